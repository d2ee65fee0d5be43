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
        let expected = try inference.forward(x)
        let logits = try model.forward(x, training: false, tape: nil).value
        #expect(logits.shape == expected.shape)
        var worst: Float = 0
        for i in 0..<logits.count { worst = max(worst, abs(logits.storage[i] - expected.storage[i])) }
        let scale = expected.maxAbs()
        print("export: max |Δ logits| = \(worst), max |logit| = \(scale)")
        #expect(scale > 0.1)
        #expect(worst <= 1e-4 * scale, "max |Δ| \(worst) vs max |logit| \(scale)")
    }

    /// Both encoders build SMP's graph: with the same deterministic weights the
    /// trainable model in eval mode gives the inference model's logits.
    @Test(arguments: TrainableUnetPlusPlus.Encoder.allCases)
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
}
