import Foundation
import Testing
@testable import Models
import TensorEngine

func fixture(_ name: String, file: String = #filePath) throws -> Tensor {
    let folder = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("Fixtures")
    return try NumPyFile.read(path: folder.appendingPathComponent(name + ".npy").path)
}

/// UNet++ logits against SMP 0.6 in PyTorch with the same deterministic weights
/// and non-trivial BatchNorm statistics: max |Δ| ≤ 1e-4 · max |logit|.
@Suite struct UnetPlusPlusParityTests {
    @Test(arguments: [
        ("unetpp_resnet18", EncoderName.resnet18, [256, 128, 64, 32, 16]),
        ("unetpp_resnet34", EncoderName.resnet34, [256, 128, 64, 32, 16]),
        ("unetpp_resnet18_small", EncoderName.resnet18, [128, 64, 32, 16, 8]),
    ])
    func logitsMatchSMP(name: String, encoder: EncoderName, decoder: [Int]) throws {
        let input = try fixture(name + "_input")
        let expected = try fixture(name + "_logits")
        let generated = DeterministicFill.uniform(name: name + ".input", count: input.count)
        #expect(generated == input.array, "the Swift generator reproduces NumPy's input")
        let (model, _) = try SegmentationModel.deterministic(encoder: encoder, decoderChannels: decoder)
        let logits = try model.forward(input)
        #expect(logits.shape == expected.shape)
        var worst: Float = 0
        for i in 0..<logits.count { worst = max(worst, abs(logits.storage[i] - expected.storage[i])) }
        let scale = expected.maxAbs()
        #expect(scale > 0.1, "fixture logits are not trivial")
        #expect(worst <= 1e-4 * scale, "max |Δ| \(worst) vs max |logit| \(scale)")
    }

    @Test func wrongWeightsAreReportedByName() throws {
        var tensors: [String: Tensor] = [:]
        for (key, shape) in SegmentationModel.parameterShapes(encoder: .resnet18) {
            tensors[key] = Tensor(zeros: shape)
        }
        tensors["decoder.blocks.x_0_0.conv1.0.weight"] = nil
        tensors["encoder.layer1.0.conv1.weight"] = Tensor(zeros: [64, 64, 1, 1])
        tensors["encoder.fc.weight"] = Tensor(zeros: [1000, 512])
        do {
            _ = try SegmentationModel(encoder: .resnet18, weights: StateDict(tensors, source: "w.safetensors"))
            Issue.record("a mismatched state_dict loaded")
        } catch let error as ModelError {
            #expect(error.message.hasPrefix("w.safetensors: "))
            #expect(error.message.contains("missing key 'decoder.blocks.x_0_0.conv1.0.weight'"))
            #expect(error.message.contains("key 'encoder.layer1.0.conv1.weight' has shape [64, 64, 1, 1], expected [64, 64, 3, 3]"))
            #expect(error.message.contains("unexpected key 'encoder.fc.weight'"))
        }
    }

    @Test func keyListMatchesSMP() {
        // SMP's UnetPlusPlus(resnet18) has 254 keys, 42 of them num_batches_tracked (one per BatchNorm).
        let keys = SegmentationModel.parameterShapes(encoder: .resnet18)
        let batchNorms = keys.filter { $0.0.hasSuffix(".running_var") }.count
        #expect(keys.count + batchNorms == 254)
        #expect(keys.last?.0 == "segmentation_head.0.bias")
    }

    @Test func rejectsSidesNotMultipleOf32() throws {
        let (model, _) = try SegmentationModel.deterministic(encoder: .resnet18, decoderChannels: [16, 16, 16, 16, 16])
        #expect(throws: ModelError.self) { try model.forward(Tensor(zeros: [1, 3, 48, 64])) }
    }
}

@Suite struct SHA256DigestTests {
    @Test func matchesKnownVectors() throws {
        #expect(SHA256Digest.hex(Array("x".utf8)) == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881")
        #expect(SHA256Digest.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let path = NSTemporaryDirectory() + "sha-\(UUID().uuidString)"
        let big = [UInt8](repeating: 0x61, count: (1 << 22) + 3)  // spans two read chunks
        try Data(big).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try SHA256Digest.hex(ofFile: path) == SHA256Digest.hex(big))
    }
}
