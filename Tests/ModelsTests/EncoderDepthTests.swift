import Foundation
import Testing
@testable import Models
import TensorEngine

/// SMP's `encoder_depth` 3 and 4: the ResNet runs only stem…layer(depth−1), the
/// decoder has `depth` blocks on its main path, inputs need multiples of 2^depth.
@Suite struct EncoderDepthTests {
    static let decoder3 = [32, 16, 8]

    /// The layer3/layer4 tensors SMP saves for a depth-3 resnet18, by the same generator.
    static func unusedStages() -> [String: Tensor] {
        var tensors: [String: Tensor] = [:]
        for (key, shape) in SegmentationModel.parameterShapes(encoder: .resnet18)
        where key.hasPrefix("encoder.layer3.") || key.hasPrefix("encoder.layer4.") {
            tensors[key] = DeterministicFill.parameter(name: key, shape: shape)
        }
        return tensors
    }

    /// Logits of SMP UnetPlusPlus(resnet18, encoder_depth=3, decoder 32,16,8, 8 classes)
    /// within 1e-4 × max |logit|, from a state_dict without the unused stages (what our
    /// trainer exports) and from one with them (what SMP saves): both give the same logits.
    @Test func depth3LogitsMatchSMP() throws {
        let name = "unetpp_resnet18_depth3"
        let expected = try fixture(name + "_logits")
        let input = Tensor(shape: [1, 3, 64, 96], values: DeterministicFill.uniform(name: name + ".input", count: 3 * 64 * 96))
        let (model, tensors) = try SegmentationModel.deterministic(encoder: .resnet18, encoderDepth: 3,
                                                                   decoderChannels: Self.decoder3, classes: 8)
        #expect(!tensors.keys.contains { $0.hasPrefix("encoder.layer3.") || $0.hasPrefix("encoder.layer4.") })
        let logits = try model.forward(input)
        #expect(logits.shape == expected.shape)
        let scale = expected.maxAbs()
        #expect(scale > 0.1, "fixture logits are not trivial")
        var worst: Float = 0
        for i in 0..<logits.count { worst = max(worst, abs(logits.storage[i] - expected.storage[i])) }
        print("depth 3 parity: max |Δ| = \(worst), max |logit| = \(scale)")
        #expect(worst <= 1e-4 * scale, "max |Δ| \(worst) vs max |logit| \(scale)")

        let withUnused = tensors.merging(Self.unusedStages()) { a, _ in a }
        let smpLayout = try SegmentationModel(encoder: .resnet18, encoderDepth: 3, decoderChannels: Self.decoder3, classes: 8,
                                              weights: StateDict(withUnused, source: "smp.safetensors"))
        #expect(try smpLayout.forward(input).array == logits.array)
    }

    @Test func keysAreSMPsWithoutTheUnusedStages() {
        // SMP's UnetPlusPlus(resnet18, encoder_depth=3, decoder_channels=(32,16,8)) state_dict: 170 keys,
        // num_batches_tracked included, layer3 and layer4 included.
        let keys = SegmentationModel.parameterShapes(encoder: .resnet18, encoderDepth: 3, decoderChannels: Self.decoder3)
        let unused = Self.unusedStages()
        let batchNorms = keys.filter { $0.0.hasSuffix(".running_var") }.count + unused.keys.filter { $0.hasSuffix(".running_var") }.count
        #expect(keys.count + unused.count + batchNorms == 170)
        #expect(keys.contains { $0.0 == "decoder.blocks.x_0_2.conv2.0.weight" && $0.1 == [8, 8, 3, 3] })
        #expect(!keys.contains { $0.0.hasPrefix("decoder.blocks.x_0_3") })
        // x_0_0 joins layer2 (128) upsampled with layer1 (64): 192 → 32.
        #expect(keys.contains { $0.0 == "decoder.blocks.x_0_0.conv1.0.weight" && $0.1 == [32, 192, 3, 3] })
    }

    @Test func depth4BuildsFourDecoderLevels() throws {
        let (model, tensors) = try SegmentationModel.deterministic(encoder: .resnet34, encoderDepth: 4,
                                                                   decoderChannels: [32, 16, 16, 8], classes: 3)
        #expect(!tensors.keys.contains { $0.hasPrefix("encoder.layer4.") })
        #expect(tensors.keys.contains("encoder.layer3.5.conv2.weight"))
        #expect(tensors["decoder.blocks.x_0_0.conv1.0.weight"]?.shape == [32, 256 + 128, 3, 3])
        #expect(model.inputMultiple == 16)
        let logits = try model.forward(Tensor(shape: [1, 3, 48, 80], values: DeterministicFill.uniform(name: "d4", count: 3 * 48 * 80)))
        #expect(logits.shape == [1, 3, 48, 80])
    }

    @Test func inputSidesAreMultiplesOfTwoToTheDepth() throws {
        let (model, _) = try SegmentationModel.deterministic(encoder: .resnet18, encoderDepth: 3, decoderChannels: Self.decoder3,
                                                             classes: 2)
        #expect(try model.forward(Tensor(zeros: [1, 3, 40, 56])).shape == [1, 2, 40, 56])
        #expect(throws: ModelError.self) { try model.forward(Tensor(zeros: [1, 3, 36, 64])) }
    }

    @Test func badConfigurationsAreRefusedByName() throws {
        let tensors = try SegmentationModel.deterministic(encoder: .resnet18, encoderDepth: 3, decoderChannels: Self.decoder3,
                                                          classes: 2).1
        func message(_ depth: Int, _ decoder: [Int], _ encoder: EncoderName = .resnet18, _ weights: [String: Tensor]) -> String {
            do {
                _ = try SegmentationModel(encoder: encoder, encoderDepth: depth, decoderChannels: decoder, classes: 2,
                                          weights: StateDict(weights, source: "w.safetensors"))
                return "loaded"
            } catch let error as ModelError { return error.message } catch { return "\(error)" }
        }
        #expect(message(3, [256, 128, 64, 32, 16], .resnet18, tensors)
                == "w.safetensors: encoder depth 3 needs 3 positive decoder channels, got [256, 128, 64, 32, 16]")
        #expect(message(2, [32, 16], .resnet18, tensors) == "w.safetensors: encoder depth 2 is not supported (UNet++ takes 3, 4 or 5)")
        #expect(message(3, Self.decoder3, .densenet121, tensors)
                == "w.safetensors: encoder depth 3 is supported for resnet encoders only, not densenet121")
        // A depth-5 file given as depth 3: its layer3/layer4 are ignored, but its decoder is the wrong shape.
        let depth5 = try SegmentationModel.deterministic(encoder: .resnet18, decoderChannels: [32, 16, 8, 8, 8], classes: 2).1
        let wrong = message(3, Self.decoder3, .resnet18, depth5)
        #expect(wrong.hasPrefix("w.safetensors: weights do not match the model: "))
        #expect(wrong.contains("unexpected key 'decoder.blocks.x_0_4.conv1.0.weight'"))
        #expect(!wrong.contains("layer4"))
        // And a depth-3 file given as depth 5 misses exactly the stages it never had.
        let missing = message(5, [32, 16, 8, 8, 8], .resnet18, tensors)
        #expect(missing.contains("missing key 'encoder.layer3.0.conv1.weight'"))
    }

    /// A package records its depth; one written before `encoder_depth` existed means 5.
    @Test func manifestDepthRoundTripsAndDefaultsToFive() throws {
        let store = ModelStore(root: NSTemporaryDirectory() + "depth-store-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        let weightsPath = NSTemporaryDirectory() + "depth3-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: weightsPath) }
        let tensors = try SegmentationModel.deterministic(encoder: .resnet18, encoderDepth: 3, decoderChannels: Self.decoder3,
                                                          classes: 2).1
        try Data(SafeTensors.encode(tensors.merging(Self.unusedStages()) { a, _ in a }, metadata: ["format": "pt"]))
            .write(to: URL(fileURLWithPath: weightsPath))
        #expect(throws: ModelError.self) {
            try store.importWeights(from: weightsPath, name: "d3", encoder: .resnet18, encoderDepth: 3, decoderChannels: Self.decoder3,
                                    classes: ["a", "b"], inputSize: 100, normalize: .unit)
        }
        try store.importWeights(from: weightsPath, name: "d3", encoder: .resnet18, encoderDepth: 3, decoderChannels: Self.decoder3,
                                classes: ["a", "b"], inputSize: 104, normalize: .unit)
        let loaded = try store.load("d3")
        #expect(loaded.manifest.encoderDepth == 3)
        #expect(loaded.network.encoderDepth == 3)
        let json = try String(contentsOfFile: store.directory(of: "d3") + "/model.json", encoding: .utf8)
        #expect(json.contains("\"encoder_depth\" : 3"))

        // The same manifest without the field, as older bonectl wrote it, reads as depth 5.
        var object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        object["encoder_depth"] = nil
        let old = try JSONDecoder().decode(ModelManifest.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(old.encoderDepth == 5)
        #expect(old.decoderChannels == Self.decoder3)
    }
}
