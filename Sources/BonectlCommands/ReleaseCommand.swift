import ArgumentParser
import Foundation
import Models
import Segmentation

struct ReleaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Make and inspect releases: ensembles of models from the store.",
        subcommands: [Create.self, List.self, ReleaseActivate.self, ReleaseRollback.self, ReleasePrune.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a release from imported models (written beside the store, in ../releases).")

        @Argument(help: "Release name.") var name: String
        @Option(help: "Member model names, comma-separated.") var members: String
        @Option(help: "soft = mean of logits before the sigmoid; hard = per-pixel vote of member masks.") var combine: CombineMode = .soft
        @Option(name: .customLong("soft-average"), help: "What a soft ensemble averages: logits or probabilities.") var softAverage: SoftAverage = .logits
        @Option(name: .customLong("min-votes"), help: "Hard ensembles: votes a pixel needs (default: strict majority).") var minVotes: Int?
        @Option(help: "Test-time augmentation: none or hflip.") var tta: TestTimeAugmentation = .none
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            let names = members.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let releases = ReleaseStore(beside: storeOptions.modelStore)
            let manifest = try releases.create(name: name, members: names, combine: combine, softAverage: softAverage,
                                               minVotes: minVotes, tta: tta)
            print("created release \(manifest.name) in \(releases.root): \(manifest.members.count) members, \(manifest.combine.rawValue)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List releases.")
        @OptionGroup var storeOptions: StoreOptions
        @Flag(help: "Machine-readable output.") var json = false

        func run() throws {
            let releases = ReleaseStore(beside: storeOptions.modelStore)
            let manifests = try releases.names().map { try releases.manifest(of: $0) }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(manifests), as: UTF8.self))
                return
            }
            if manifests.isEmpty { print("no releases in \(releases.root)"); return }
            print(Table.render(header: ["NAME", "COMBINE", "TTA", "MEMBERS", "CREATED"],
                               rows: manifests.map { [$0.name, $0.combine.rawValue, $0.tta.rawValue,
                                                      $0.members.map(\.model).joined(separator: ","), $0.createdAt] }))
        }
    }
}
