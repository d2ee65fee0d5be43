import ArgumentParser
import CompetitionFormat
import Foundation

/// An error of a command's input, printed as one line naming the file and problem.
struct InputFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description.replacingOccurrences(of: "\n", with: " ") }
    init(_ error: Error) { self.init("\(error)") }
}

/// `bonectl eval`: the competition's Dice of a submission against ground truth.
public struct EvalCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score a submission CSV against ground-truth annotations with the competition's Dice.",
        discussion: """
        Dice per image and class is (2|A∩B| + 1e-4) / (|A| + |B| + 1e-4), averaged over images \
        for each class, then over the 29 classes. --gt is a folder in the competition layout \
        (outputs_json/IDxxx/*.json, with DCM/IDxxx/*.png giving each image's size) or a folder of \
        annotation JSON files (with <stem>.png beside them when present). Images without a PNG \
        are --size × --size. Rows match annotations by file name without extension; every \
        annotated image needs all 29 rows and every submitted image an annotation.
        """
    )

    @Option(name: .long, help: ArgumentHelp("The submission CSV (image_name,class,rle).", valueName: "csv"))
    var pred: String

    @Option(name: .long, help: ArgumentHelp("The ground-truth folder.", valueName: "dir"))
    var gt: String

    @Option(name: .long, help: ArgumentHelp("Side of the images that have no PNG beside their annotation.", valueName: "pixels"))
    var size: Int = 2048

    @Flag(name: .long, help: "Print JSON for scripts instead of a table.")
    var json = false

    public init() {}

    public func validate() throws {
        guard (1...65536).contains(size) else { throw ValidationError("--size \(size) is outside 1...65536") }
    }

    public func run() throws {
        let report: DiceReport
        do {
            let rows = try SubmissionCSV.read(path: pred)
            let showProgress = isatty(STDERR_FILENO) != 0
            report = try Evaluation.evaluate(rows: rows, predictionPath: pred, groundTruth: gt, defaultSize: size,
                                             progress: showProgress ? { done, total in
                                                 FileHandle.standardError.write(Data("\rscoring \(done)/\(total)".utf8))
                                                 if done == total { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                                             } : nil)
        } catch {
            throw InputFailure(error)
        }
        print(json ? Self.json(report, pred: pred, gt: gt) : Self.table(report), terminator: "")
    }

    static func table(_ report: DiceReport) -> String {
        let width = max(5, BoneClasses.names.map(\.count).max()!)
        func pad(_ s: String) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        var out = "\(pad("class"))  dice\n"
        for (name, dice) in zip(BoneClasses.names, report.perClass) {
            out += "\(pad(name))  \(String(format: "%.4f", dice))\n"
        }
        out += "\(pad("mean"))  \(String(format: "%.4f", report.mean))  (\(report.images.count) images)\n"
        return out
    }

    struct JSONReport: Encodable {
        struct ClassScore: Encodable {
            let `class`: String
            let dice: Double
        }
        struct ImageScore: Encodable {
            let image: String
            let mean_dice: Double
        }
        let pred: String
        let gt: String
        let images: Int
        let mean_dice: Double
        let per_class: [ClassScore]
        let per_image: [ImageScore]
    }

    static func json(_ report: DiceReport, pred: String, gt: String) -> String {
        let value = JSONReport(
            pred: pred, gt: gt, images: report.images.count, mean_dice: report.mean,
            per_class: zip(BoneClasses.names, report.perClass).map { JSONReport.ClassScore(class: $0, dice: $1) },
            per_image: report.images.map { JSONReport.ImageScore(image: $0.name, mean_dice: $0.scores.reduce(0, +) / Double($0.scores.count)) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(value), as: UTF8.self) + "\n"
    }
}
