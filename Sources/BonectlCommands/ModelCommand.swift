import ArgumentParser
import CompetitionFormat
import Foundation
import Models
import SystemIO
import TensorEngine

/// Options shared by every command that reads the model store.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "Model store directory.")
    var store: String = ModelStore.defaultRoot

    var modelStore: ModelStore { ModelStore(root: store) }
}

extension EncoderName: ExpressibleByArgument {}
extension Normalization: ExpressibleByArgument {}

/// Parses "256,128,64,32,16".
func parseChannels(_ text: String) throws -> [Int] {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw ValidationError("--decoder-channels '\(text)' must be positive integers separated by commas")
    }
    return values.map { $0! }
}

/// --encoder-depth and --decoder-channels together: without --decoder-channels, the
/// first `depth` of SMP's default (256,128,64,32,16); with it, one channel per level.
func decoderChannelList(_ text: String?, encoderDepth: Int) throws -> [Int] {
    guard SegmentationModel.encoderDepths.contains(encoderDepth) else {
        throw ValidationError("--encoder-depth \(encoderDepth) must be 3, 4 or 5")
    }
    guard let text else { return Array([256, 128, 64, 32, 16].prefix(encoderDepth)) }
    let channels = try parseChannels(text)
    guard channels.count == encoderDepth else {
        throw ValidationError("--decoder-channels '\(text)' has \(channels.count) values; --encoder-depth \(encoderDepth) needs \(encoderDepth)")
    }
    return channels
}

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Import and inspect models in the store.",
        subcommands: [Import.self, List.self, RandomWeights.self]
    )

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import SMP UnetPlusPlus weights (model.state_dict() saved with safetensors) unchanged.")

        @Argument(help: "The .safetensors file.") var weights: String
        @Option(help: "Name of the model in the store.") var name: String
        @Option(help: "Architecture (only unetplusplus).") var arch: String = "unetplusplus"
        @Option(help: "Encoder: \(EncoderName.allCases.map(\.rawValue).joined(separator: ", ")).") var encoder: EncoderName
        @Option(help: "Number of output classes (29: the competition's, in its order).") var classes: Int = 29
        @Option(name: .customLong("input-size"), help: "Square input side the images are resized to.") var inputSize: Int = 512
        @Option(help: "unit = x/255, imagenet = ImageNet mean/std, half = (x/255-0.5)/0.5.") var normalize: Normalization = .unit
        @Option(name: .customLong("encoder-depth"), help: "SMP's encoder_depth: 3, 4 or 5 (depth < 5: resnet encoders).") var encoderDepth: Int = 5
        @Option(name: .customLong("decoder-channels"), help: "UNet++ decoder channels, one per encoder level (default 256,128,64,32,16 cut to the depth).") var decoderChannels: String?
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            guard arch == "unetplusplus" else { throw ValidationError("--arch '\(arch)' is not supported (unetplusplus)") }
            guard classes > 0 else { throw ValidationError("--classes must be positive") }
            let names = classes == BoneClasses.count ? BoneClasses.names : (0..<classes).map { "class-\($0 + 1)" }
            let manifest = try storeOptions.modelStore.importWeights(
                from: weights, name: name, encoder: encoder, encoderDepth: encoderDepth,
                decoderChannels: try decoderChannelList(decoderChannels, encoderDepth: encoderDepth),
                classes: names, inputSize: inputSize, normalize: normalize)
            print("imported \(manifest.name): \(manifest.archDescription), \(manifest.classes.count) classes, input \(inputSize)², sha256 \(manifest.weightsSHA256.prefix(12))…")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the models in the store.")
        @OptionGroup var storeOptions: StoreOptions
        @Flag(help: "Machine-readable output.") var json = false

        func run() throws {
            let store = storeOptions.modelStore
            let manifests = try store.names().map { try store.manifest(of: $0) }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(manifests), as: UTF8.self))
                return
            }
            if manifests.isEmpty { print("no models in \(store.root)"); return }
            let rows = manifests.map { [$0.name, $0.archDescription, "\($0.inputSize)", "\($0.classes.count)", $0.normalize.rawValue, String($0.weightsSHA256.prefix(12))] }
            print(Table.render(header: ["NAME", "ARCH", "INPUT", "CLASSES", "NORMALIZE", "SHA256"], rows: rows))
        }
    }

    struct RandomWeights: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "random-weights",
            abstract: "Write deterministic random UnetPlusPlus weights with SMP key names (for demos, benchmarks and parity checks).")
        @Option(help: "Encoder.") var encoder: EncoderName
        @Option(help: "Number of output classes.") var classes: Int = 29
        @Option(name: .customLong("encoder-depth"), help: "SMP's encoder_depth: 3, 4 or 5; unused encoder stages are not written.") var encoderDepth: Int = 5
        @Option(name: .customLong("decoder-channels"), help: "UNet++ decoder channels, one per encoder level (default 256,128,64,32,16 cut to the depth).") var decoderChannels: String?
        @Option(help: "Output .safetensors file.") var out: String

        func run() throws {
            guard classes > 0 else { throw ValidationError("--classes must be positive") }
            let channels = try decoderChannelList(decoderChannels, encoderDepth: encoderDepth)
            try SegmentationModel.check(encoder: encoder, encoderDepth: encoderDepth, decoderChannels: channels, source: out)
            var tensors: [String: Tensor] = [:]
            for (key, shape) in SegmentationModel.parameterShapes(encoder: encoder, encoderDepth: encoderDepth,
                                                                  decoderChannels: channels, classes: classes) {
                tensors[key] = DeterministicFill.parameter(name: key, shape: shape)
            }
            try AtomicFile.write(SafeTensors.encode(tensors, metadata: ["format": "pt"]), to: out)
            print("wrote \(tensors.count) tensors to \(out)")
        }
    }
}

extension ModelManifest {
    /// "unetplusplus/resnet34", with the depth when it is not SMP's default 5.
    var archDescription: String {
        "\(arch)/\(encoder.rawValue)" + (encoderDepth == 5 ? "" : " depth \(encoderDepth)")
    }
}

/// Plain aligned columns for terminal tables.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
