import Foundation
import Testing
import Models
import TensorEngine
@testable import Training

@Suite(.serialized) struct TrainableModelTests {
    /// After a training step (so running statistics have moved), the exported
    /// state_dict loads into the inference SegmentationModel and gives the
    /// trainable model's eval-mode logits.
    @Test func exportedStateDictRunsInSegmentationModel() throws {
        let decoder = [32, 16, 16, 8, 8]
        let model = try TrainableUnetPlusPlus.deterministic(encoder: .resnet18, decoderChannels: decoder, classes: 3)
        let x = Tensor(shape: [2, 3, 64, 64], values: DeterministicFill.uniform(name: "export.input", count: 2 * 3 * 64 * 64))
        let t = Tensor(shape: [2, 3, 64, 64], values: DeterministicFill.uniform(name: "export.target", count: 2 * 3 * 64 * 64).map { $0 < 0.4 ? 1 : 0 })
        let before = model.stateDict()
        try model.trainStep(input: x, targets: t, optimizer: AdamW(parameters: model.parameters, learningRate: 1e-3))
        let state = model.stateDict()
        #expect(Set(state.keys) == Set(SegmentationModel.parameterShapes(encoder: .resnet18, decoderChannels: decoder, classes: 3).map(\.0)))
        let moved = before["encoder.bn1.running_mean"]!.array != state["encoder.bn1.running_mean"]!.array
        #expect(moved, "the training step updated running statistics")
        #expect(before["segmentation_head.0.weight"]!.array != state["segmentation_head.0.weight"]!.array, "the step changed weights")

        let inference = try SegmentationModel(encoder: .resnet18, decoderChannels: decoder, classes: 3,
                                              weights: StateDict(state, source: "exported"))
        try Self.expectEvalLogitsMatch(model, inference, x, label: "export", tolerance: 1e-4)
    }

    /// Each encoder family builds SMP's graph: with the same deterministic weights the
    /// trainable model in eval mode gives the inference model's logits.
    @Test(arguments: [TrainableUnetPlusPlus.Encoder.resnet18, .resnet34, .densenet121, .hrnetW18])
    func evalLogitsMatchSegmentationModel(encoder: TrainableUnetPlusPlus.Encoder) throws {
        let decoder = [32, 16, 16, 8, 8]
        let model = try TrainableUnetPlusPlus.deterministic(encoder: encoder, decoderChannels: decoder, classes: 4)
        let (inference, _) = try SegmentationModel.deterministic(encoder: encoder.encoderName, decoderChannels: decoder, classes: 4)
        let x = Tensor(shape: [1, 3, 64, 96], values: DeterministicFill.uniform(name: "eval.input", count: 3 * 64 * 96))
        let expected = try inference.forward(x)
        let logits = try model.forward(x, training: false, tape: nil).value
        #expect(logits.shape == expected.shape)
        var worst: Float = 0
        for i in 0..<logits.count { worst = max(worst, abs(logits.storage[i] - expected.storage[i])) }
        #expect(expected.maxAbs() > 0.1)
        #expect(worst <= 1e-4 * expected.maxAbs(), "\(encoder): max |Δ| \(worst) vs max |logit| \(expected.maxAbs())")
        #expect(model.parameters.count == SegmentationModel.parameterShapes(encoder: encoder.encoderName, decoderChannels: decoder,
                                                                           classes: 4).filter { !$0.0.contains("running_") }.count)
    }

    /// encoder_depth 3: only stem, layer1 and layer2 are built and exported, and the
    /// exported state_dict (after a step, so running statistics moved) loads into a
    /// depth-3 SegmentationModel with the same eval logits within 1e-5 × max |logit|.
    @Test func depthThreeExportRunsInSegmentationModel() throws {
        let decoder = [32, 16, 8]
        let model = try TrainableUnetPlusPlus.deterministic(encoder: .resnet34, encoderDepth: 3, decoderChannels: decoder, classes: 3)
        #expect(model.inputMultiple == 8)
        #expect(!model.parameters.contains { $0.name.hasPrefix("encoder.layer3.") || $0.name.hasPrefix("encoder.layer4.") })
        let x = Tensor(shape: [2, 3, 40, 56], values: DeterministicFill.uniform(name: "depth3.input", count: 2 * 3 * 40 * 56))
        let t = Tensor(shape: [2, 3, 40, 56], values: DeterministicFill.uniform(name: "depth3.target", count: 2 * 3 * 40 * 56).map { $0 < 0.4 ? 1 : 0 })
        try model.trainStep(input: x, targets: t, optimizer: AdamW(parameters: model.parameters, learningRate: 1e-3))
        let state = model.stateDict()
        #expect(Set(state.keys) == Set(SegmentationModel.parameterShapes(encoder: .resnet34, encoderDepth: 3, decoderChannels: decoder,
                                                                         classes: 3).map(\.0)))
        let inference = try SegmentationModel(encoder: .resnet34, encoderDepth: 3, decoderChannels: decoder, classes: 3,
                                              weights: StateDict(state, source: "exported depth 3"))
        try Self.expectEvalLogitsMatch(model, inference, x, label: "depth 3 export", tolerance: 1e-5)
        #expect(throws: ModelError.self) { try model.forward(Tensor(zeros: [1, 3, 36, 64]), training: false, tape: nil) }
    }

    /// A state_dict as SMP saves it for depth 3 (layer3/layer4 present) loads; the
    /// unused stages are neither parameters nor exported.
    @Test func depthThreeAcceptsSMPsUnusedStages() throws {
        var tensors: [String: Tensor] = [:]
        for (key, shape) in SegmentationModel.parameterShapes(encoder: .resnet18, encoderDepth: 3, decoderChannels: [16, 8, 8], classes: 2)
            + SegmentationModel.parameterShapes(encoder: .resnet18, decoderChannels: [16, 8, 8, 8, 8], classes: 2)
                .filter({ $0.0.hasPrefix("encoder.layer3.") || $0.0.hasPrefix("encoder.layer4.") }) {
            tensors[key] = DeterministicFill.parameter(name: key, shape: shape)
        }
        tensors["encoder.layer4.0.bn1.num_batches_tracked"] = Tensor(zeros: [])
        let model = try TrainableUnetPlusPlus(encoder: .resnet18, encoderDepth: 3, decoderChannels: [16, 8, 8], classes: 2, weights: tensors)
        #expect(!model.stateDict().keys.contains { $0.contains("layer3") || $0.contains("layer4") })
        // With five decoder channels a depth-3 model is refused, naming the problem.
        do {
            _ = try TrainableUnetPlusPlus(encoder: .resnet18, encoderDepth: 3, decoderChannels: [16, 8, 8, 8, 8], classes: 2, weights: tensors)
            Issue.record("a depth-3 model with five decoder channels was built")
        } catch let error as ModelError {
            #expect(error.message.contains("encoder depth 3 needs 3 positive decoder channels"))
        }
    }

    /// Training from scratch: PyTorch/SMP's initialisers (torchvision ResNet convs
    /// kaiming_normal fan_out; decoder convs kaiming_uniform fan_in; head
    /// xavier_uniform, bias 0; BatchNorm 1/0 with running statistics 0/1), from a seed.
    @Test func initializedDrawsPyTorchsDistributionsFromASeed() throws {
        let decoder = [64, 32, 16, 16, 16]
        let a = try TrainableUnetPlusPlus.initialized(encoder: .resnet18, decoderChannels: decoder, classes: 4, seed: 7).stateDict()
        let b = try TrainableUnetPlusPlus.initialized(encoder: .resnet18, decoderChannels: decoder, classes: 4, seed: 7).stateDict()
        let c = try TrainableUnetPlusPlus.initialized(encoder: .resnet18, decoderChannels: decoder, classes: 4, seed: 8).stateDict()
        #expect(a.keys.sorted() == b.keys.sorted())
        #expect(a.allSatisfy { b[$0.key]!.array == $0.value.array }, "same seed, same weights")
        #expect(a["encoder.layer3.1.conv1.weight"]!.array != c["encoder.layer3.1.conv1.weight"]!.array, "another seed, other weights")

        func moments(_ t: Tensor) -> (mean: Double, std: Double, maxAbs: Float) {
            let v = t.array.map(Double.init)
            let mean = v.reduce(0, +) / Double(v.count)
            return (mean, (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot(), t.maxAbs())
        }
        // Encoder: normal(0, √(2 / fan_out)); 256·256·9 = 589,824 values, so the std is within 1 %.
        let enc = moments(a["encoder.layer3.1.conv1.weight"]!)
        let encStd = (2.0 / Double(256 * 9)).squareRoot()
        #expect(abs(enc.std / encStd - 1) < 0.01 && abs(enc.mean) < 0.01 * encStd, "encoder std \(enc.std) vs \(encStd)")
        #expect(Double(enc.maxAbs) > 4 * encStd, "normal, not uniform")
        // Decoder: uniform(±√(6 / fan_in)): std bound/√3, and nothing beyond the bound.
        let dec = a["decoder.blocks.x_0_1.conv1.0.weight"]!
        let decBound = (6.0 / Double(dec.shape[1] * 9)).squareRoot()
        let decMoments = moments(dec)
        #expect(Double(dec.maxAbs()) <= decBound && Double(dec.maxAbs()) > 0.99 * decBound)
        #expect(abs(decMoments.std / (decBound / 3.0.squareRoot()) - 1) < 0.02, "decoder std \(decMoments.std)")
        // Head: xavier_uniform(±√(6 / (fan_in + fan_out))), bias 0.
        let headBound = (6.0 / Double(16 * 9 + 4 * 9)).squareRoot()
        let head = a["segmentation_head.0.weight"]!
        #expect(Double(head.maxAbs()) <= headBound && Double(head.maxAbs()) > 0.9 * headBound)
        #expect(a["segmentation_head.0.bias"]!.array == [0, 0, 0, 0])
        // Every BatchNorm 1/0, running statistics 0/1.
        for (key, t) in a where t.rank == 1 && !key.hasPrefix("segmentation_head") {
            let expected: Float = key.hasSuffix(".weight") || key.hasSuffix(".running_var") ? 1 : 0
            #expect(t.array.allSatisfy { $0 == expected }, "\(key)")
        }
    }

    /// DenseNet keeps torchvision's kaiming_normal with fan_in, timm's HRNet kaiming_normal
    /// with fan_out (both replace PyTorch's default conv init in their constructors).
    @Test(arguments: [("densenet121", "encoder.features.denseblock3.denselayer1.conv1.weight", true),
                      ("tu-hrnet_w18", "encoder.model.layer1.0.conv2.weight", false)])
    func initializedUsesTheBackbonesConvInit(encoder: String, key: String, fanIn: Bool) throws {
        let model = try TrainableUnetPlusPlus.initialized(encoder: try #require(.init(rawValue: encoder)),
                                                          decoderChannels: [16, 16, 16, 8, 8], classes: 2, seed: 1)
        let weight = try #require(model.parameters.first { $0.name == key }).value
        let fan = fanIn ? weight.shape[1] * weight.shape[2] * weight.shape[3] : weight.shape[0] * weight.shape[2] * weight.shape[3]
        let expected = (2.0 / Double(fan)).squareRoot()
        let values = weight.array.map(Double.init)
        let std = (values.map { $0 * $0 }.reduce(0, +) / Double(values.count)).squareRoot()
        #expect(abs(std / expected - 1) < 0.03, "\(key): std \(std), expected \(expected) (\(values.count) values)")
        #expect(model.batchNorms.allSatisfy { $0.runningVar.array.allSatisfy { $0 == 1 } && $0.weight.value.array.allSatisfy { $0 == 1 } })
    }

    /// Same seed and data → bit-identical parameters and running statistics after N steps.
    @Test func sameSeedSameParameters() throws {
        func run() throws -> [String: Tensor] {
            let model = try TrainableUnetPlusPlus.deterministic(encoder: .resnet18, decoderChannels: [16, 16, 16, 16, 16], classes: 2)
            let optimizer = AdamW(parameters: model.parameters, learningRate: 1e-3)
            for step in 0..<3 {
                let x = Tensor(shape: [2, 3, 32, 32], values: DeterministicFill.uniform(name: "repro.input.\(step)", count: 2 * 3 * 32 * 32))
                let t = Tensor(shape: [2, 2, 32, 32], values: DeterministicFill.uniform(name: "repro.target.\(step)", count: 2 * 2 * 32 * 32).map { $0 < 0.5 ? 1 : 0 })
                try model.trainStep(input: x, targets: t, optimizer: optimizer, maxGradientNorm: 0.5)
            }
            return model.stateDict()
        }
        let a = try run(), b = try run()
        #expect(a.count == b.count && !a.isEmpty)
        var different: [String] = []
        for (key, tensor) in a where tensor.array != b[key]?.array { different.append(key) }
        #expect(different.isEmpty, "tensors differ between runs: \(different.sorted().prefix(5))")
        let initial = try TrainableUnetPlusPlus.deterministic(encoder: .resnet18, decoderChannels: [16, 16, 16, 16, 16], classes: 2).stateDict()
        #expect(a["decoder.blocks.x_0_4.conv2.0.weight"]!.array != initial["decoder.blocks.x_0_4.conv2.0.weight"]!.array, "training moved the weights")
    }

    /// The trainable model in eval mode against the inference model on the same input:
    /// max |Δ logit| within `tolerance` × max |logit| (and the logits not trivially small).
    static func expectEvalLogitsMatch(_ model: TrainableUnetPlusPlus, _ inference: SegmentationModel, _ x: Tensor,
                                      label: String, tolerance: Float) throws {
        let expected = try inference.forward(x)
        let logits = try model.forward(x, training: false, tape: nil).value
        #expect(logits.shape == expected.shape)
        var worst: Float = 0
        for i in 0..<logits.count { worst = max(worst, abs(logits.storage[i] - expected.storage[i])) }
        let scale = expected.maxAbs()
        print("\(label): max |Δ logits| = \(worst), max |logit| = \(scale)")
        #expect(scale > 0.1)
        #expect(worst <= tolerance * scale, "max |Δ| \(worst) vs max |logit| \(scale)")
    }
}
