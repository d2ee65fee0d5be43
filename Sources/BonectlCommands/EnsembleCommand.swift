import ArgumentParser
import CompetitionFormat

extension EnsembleRule: ExpressibleByArgument {}

/// `bonectl ensemble --hard`: per-pixel vote over submission CSVs.
public struct EnsembleCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ensemble",
        abstract: "Combine submission CSVs by a per-pixel vote of their masks.",
        discussion: """
        Every file must have the same rows, matched by (image_name, class); the output keeps \
        the first file's row order. --rule majority keeps a pixel with at least --min-votes \
        votes (default a strict majority, n/2 + 1 of n files). --rule seed is the competition \
        team's rule: per row only the files whose row is non-empty vote; with n of them a pixel \
        needs n/2 votes (integer division) and at least one, so n = 0 gives an empty row and \
        n = 1 copies that file's row. Masks are --size × --size, or the size of the PNG of the \
        same name under --images. OUT is written whole or not at all.
        """
    )

    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp("The member CSV files (two or more).", valueName: "csv"))
    var hard: [String]

    @Option(name: .long, help: ArgumentHelp("The combined CSV to write.", valueName: "csv"))
    var out: String

    @Option(name: .customLong("min-votes"), help: ArgumentHelp("Votes a pixel needs (majority rule only).", valueName: "k"))
    var minVotes: Int?

    @Option(name: .long, help: "How pixels vote.")
    var rule: EnsembleRule = .majority

    @Option(name: .long, help: ArgumentHelp("Side of the images, when --images is not given.", valueName: "pixels"))
    var size: Int = 2048

    @Option(name: .long, help: ArgumentHelp("A folder of the PNGs, searched recursively, to take each image's size from.", valueName: "dir"))
    var images: String?

    public init() {}

    public func validate() throws {
        guard (1...65536).contains(size) else { throw ValidationError("--size \(size) is outside 1...65536") }
    }

    public func run() throws {
        do {
            let members = try hard.map { HardEnsemble.Member(path: $0, rows: try SubmissionCSV.read(path: $0)) }
            let sizes: (String) throws -> (width: Int, height: Int)
            if let images {
                let index = try ImageSizeIndex(directory: images)
                sizes = { try index.size(of: $0) }
            } else {
                let side = size
                sizes = { _ in (side, side) }
            }
            let rows = try HardEnsemble.combine(members, rule: rule, minVotes: minVotes, imageSize: sizes)
            try SubmissionCSV.write(rows, to: out)
        } catch {
            throw InputFailure(error)
        }
    }
}
