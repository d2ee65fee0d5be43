import Foundation
import Testing
@testable import Models
import TensorEngine

/// DenseNet (torchvision, SMP's DenseNetEncoder) and timm HRNet (SMP's
/// TimmUniversalEncoder, `tu-hrnet_w18`) under UNet++, against SMP 0.6 in PyTorch
/// with the same deterministic weights and non-trivial BatchNorm statistics:
/// max |Δ| ≤ 1e-4 · max |logit|. Only the expected logits are committed; the
/// input comes from the shared generator (tools/make_parity_fixtures.py).
@Suite struct EncoderParityTests {
    @Test(arguments: [
        ("unetpp_densenet121", EncoderName.densenet121),
        ("unetpp_hrnet_w18", EncoderName.hrnetW18),
    ])
    func logitsMatchSMP(name: String, encoder: EncoderName) throws {
        let expected = try fixture(name + "_logits")
        #expect(expected.shape == [1, 2, 64, 64])
        let input = Tensor(shape: [1, 3, 64, 64], values: DeterministicFill.uniform(name: name + ".input", count: 3 * 64 * 64))
        let (model, _) = try SegmentationModel.deterministic(encoder: encoder, classes: 2)
        let logits = try model.forward(input)
        #expect(logits.shape == expected.shape)
        guard logits.shape == expected.shape else { return }
        var worst: Float = 0
        for i in 0..<logits.count { worst = max(worst, abs(logits.storage[i] - expected.storage[i])) }
        let scale = expected.maxAbs()
        #expect(scale > 0.1, "fixture logits are not trivial")
        #expect(worst <= 1e-4 * scale, "max |Δ| \(worst) vs max |logit| \(scale)")
    }

    /// Key counts of SMP 0.6's UnetPlusPlus(encoder, classes=29) state_dicts, with
    /// num_batches_tracked (one per BatchNorm), and their parameter counts
    /// (`sum(p.numel() for p in model.parameters())`), as printed by PyTorch.
    @Test(arguments: [
        (EncoderName.densenet121, 859, 30_076_333), (EncoderName.densenet169, 1147, 38_850_989),
        (EncoderName.densenet201, 1339, 48_588_205), (EncoderName.hrnetW18, 2060, 20_797_569),
        (EncoderName.hrnetW32, 2060, 40_731_245), (EncoderName.hrnetW48, 2060, 76_968_429),
    ])
    func keysMatchSMP(encoder: EncoderName, keys expected: Int, parameters: Int) {
        let keys = SegmentationModel.parameterShapes(encoder: encoder)
        let batchNorms = keys.filter { $0.0.hasSuffix(".running_var") }.count
        #expect(keys.count + batchNorms == expected)
        #expect(Set(keys.map(\.0)).count == keys.count, "no key is taken twice")
        let learned = keys.filter { !$0.0.hasSuffix(".running_mean") && !$0.0.hasSuffix(".running_var") }
        #expect(learned.reduce(0) { $0 + $1.1.reduce(1, *) } == parameters)
    }

    /// Channel counts of SMP's `encoder.out_channels`.
    @Test(arguments: [
        (EncoderName.densenet121, [3, 64, 256, 512, 1024, 1024]),
        (EncoderName.densenet169, [3, 64, 256, 512, 1280, 1664]),
        (EncoderName.densenet201, [3, 64, 256, 512, 1792, 1920]),
        (EncoderName.hrnetW18, [3, 64, 128, 256, 512, 1024]),
    ])
    func outChannelsMatchSMP(encoder: EncoderName, channels: [Int]) throws {
        // Zero weights (a recording StateDict) are enough for shapes.
        let model = try SegmentationModel(encoder: encoder, decoderChannels: [16, 16, 16, 16, 16], classes: 1,
                                          weights: StateDict([:], source: "shapes", recording: true))
        #expect(model.encoder.outChannels == channels)
        let features = model.encoder.features(Tensor(zeros: [1, 3, 64, 32]))
        #expect(features.map(\.shape) == channels.enumerated().map { i, c in [1, c, 64 >> i, 32 >> i] })
    }

    @Test func rawValuesAreSMPNames() {
        #expect(EncoderName(rawValue: "tu-hrnet_w18") == .hrnetW18)
        #expect(EncoderName(rawValue: "tu-hrnet_w32") == .hrnetW32)
        #expect(EncoderName(rawValue: "tu-hrnet_w48") == .hrnetW48)
        #expect(EncoderName(rawValue: "densenet201") == .densenet201)
    }

    @Test func hrnetWeightsOfAnotherWidthAreReportedByName() throws {
        var tensors: [String: Tensor] = [:]
        for (key, shape) in SegmentationModel.parameterShapes(encoder: .hrnetW32) { tensors[key] = Tensor(zeros: shape) }
        do {
            _ = try SegmentationModel(encoder: .hrnetW18, weights: StateDict(tensors, source: "w32.safetensors"))
            Issue.record("w32 weights loaded as w18")
        } catch let error as ModelError {
            #expect(error.message.contains("key 'encoder.model.transition1.0.0.weight' has shape [32, 256, 3, 3], expected [18, 256, 3, 3]"))
        }
    }
}

/// The engine ops the new encoders add, against direct definitions.
@Suite struct EncoderOpsTests {
    @Test func channelAffineReadsAPrefixOfChannels() {
        let x = Tensor(shape: [2, 3, 2, 2], values: (0..<24).map { Float($0) - 10 })
        let affine = ChannelAffine(gamma: [2, 1], beta: [0, 1], mean: [1, 0], variance: [3, 0.25], epsilon: 1)
        let y = affine(x, relu: true)
        #expect(y.shape == [2, 2, 2, 2])
        for n in 0..<2 {
            for c in 0..<2 {
                for i in 0..<4 {
                    let v = x.storage[(n * 3 + c) * 4 + i]
                    let s: Float = c == 0 ? 1 : 1 / Float(1.25).squareRoot()
                    let ref = c == 0 ? (v - 1) * s : v * s + 1
                    #expect(abs(y.storage[(n * 2 + c) * 4 + i] - max(ref, 0)) < 1e-5)
                }
            }
        }
    }

    @Test func addUpsampledNearestIsNearestInterpolation() {
        let low = Tensor(shape: [1, 2, 2, 3], values: (0..<12).map(Float.init))
        let acc = Tensor(shape: [1, 2, 8, 12], values: [Float](repeating: 0.5, count: 192))
        Ops.addUpsampledNearest(low, into: acc, factor: 4)
        for c in 0..<2 {
            for y in 0..<8 {
                for x in 0..<12 {
                    #expect(acc.storage[(c * 8 + y) * 12 + x] == 0.5 + low.storage[(c * 2 + y / 4) * 3 + x / 4])
                }
            }
        }
    }

    @Test func copyChannelsPlacesEachImageSlice() {
        let src = Tensor(shape: [2, 1, 1, 2], values: [1, 2, 3, 4])
        let dst = Tensor(zeros: [2, 3, 1, 2])
        Ops.copyChannels(src, into: dst, at: 1)
        #expect(dst.array == [0, 0, 1, 2, 0, 0, 0, 0, 3, 4, 0, 0])
    }
}
