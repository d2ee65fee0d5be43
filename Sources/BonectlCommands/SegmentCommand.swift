import ArgumentParser
import Foundation
import Models
import Segmentation
import SystemIO
import TensorEngine

struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Segment a radiograph with a model from the store.")

    @Argument(help: "A PNG radiograph (8/16-bit gray, gray+alpha, RGB, RGBA, palette).") var image: String
    @Option(help: "Model name in the store.") var model: String
    @Option(help: "Write the raw logits at model resolution as .npy, float32, shape [1, C, H, W].") var logits: String
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let loaded = try storeOptions.modelStore.load(model)
        let (gray, _) = try ImageInput.readGray(image)
        let input = Preprocessing.input(for: gray, size: loaded.manifest.inputSize, normalize: loaded.manifest.normalize)
        let output = try loaded.network.forward(input)
        try AtomicFile.write(NumPyFile.encode(output), to: logits)
        print("\(image): \(gray.width)x\(gray.height) → logits \(output.shape) in \(logits)")
    }
}
