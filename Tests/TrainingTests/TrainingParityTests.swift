import Foundation
import Testing
import Models
import TensorEngine
@testable import Training

/// What tools/make_training_fixtures.py recorded from PyTorch + SMP 0.6.
struct TrainingFixture: Decodable {
    let decoder: [Int]
    let classes: Int
    let input: [Int]
    let lr: Float
    let max_norm: Float
    let steps: Int
    let samples: Int
    let full: Int
    let losses: [Double]
    let grad_norms: [Double]
    let parameters: [String]
    let running: [String]

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func load() throws -> TrainingFixture {
        let data = try Data(contentsOf: folder.appendingPathComponent("train_manifest.json"))
        return try JSONDecoder().decode(TrainingFixture.self, from: data)
    }

    static func array(_ name: String) throws -> Tensor {
        try NumPyFile.read(path: folder.appendingPathComponent("train_\(name).npy").path)
    }

    /// The script's sample_indices.
    func indices(count: Int) -> [Int] {
        if count <= full { return Array(0..<count) }
        let stride = count / samples
        return (0..<samples).map { $0 * stride + ($0 * 131 + 17) % stride }
    }

    /// Input and targets from the shared generator, as the script makes them.
    func batch() -> (Tensor, Tensor) {
        let (n, h, w) = (input[0], input[2], input[3])
        let x = Tensor(shape: [n, 3, h, w], values: DeterministicFill.uniform(name: "train.input", count: n * 3 * h * w))
        let u = DeterministicFill.uniform(name: "train.target", count: n * classes * h * w)
        let t = Tensor(shape: [n, classes, h, w], values: u.map { $0 < 0.3 ? 1 : 0 })
        return (x, t)
    }

    func model() throws -> TrainableUnetPlusPlus {
        try TrainableUnetPlusPlus.deterministic(encoder: .resnet18, decoderChannels: decoder, classes: classes)
    }
}

/// Compares every parameter tensor's sampled values with the fixture's:
/// returns the worst |Δ| / (scale of that tensor), scale = max |expected| over the
/// whole tensor as PyTorch recorded it.
func worstRatio(_ tensors: [String: Tensor], fixture: TrainingFixture, stats: Tensor, samples: Tensor,
                report: (String, Float) -> Void = { _, _ in }) -> (Float, String) {
    var offset = 0, worst: Float = 0, worstKey = ""
    for (index, key) in fixture.parameters.enumerated() {
        guard let tensor = tensors[key] else {
            Issue.record("no tensor for \(key)")
            return (.infinity, key)
        }
        let scale = stats.storage[index * 2]
        var ratio: Float = 0
        for i in fixture.indices(count: tensor.count) {
            ratio = max(ratio, abs(tensor.storage[i] - samples.storage[offset]) / scale)
            offset += 1
        }
        // The whole tensor: its largest value and its sum match the recorded ones.
        var sum: Double = 0
        for i in 0..<tensor.count { sum += Double(tensor.storage[i]) }
        ratio = max(ratio, abs(tensor.maxAbs() - scale) / scale)
        ratio = max(ratio, Float(abs(sum - Double(stats.storage[index * 2 + 1]))) / (scale * Float(tensor.count).squareRoot()))
        report(key, ratio)
        if ratio > worst { (worst, worstKey) = (ratio, key) }
    }
    #expect(offset == samples.count, "every committed sample was compared")
    return (worst, worstKey)
}

@Suite(.serialized) struct TrainingParityTests {
    /// One forward + backward in training mode: every parameter's gradient within
    /// 1e-3 × that tensor's max |grad| of PyTorch's.
    @Test func gradientsMatchPyTorch() throws {
        let fixture = try TrainingFixture.load()
        let model = try fixture.model()
        #expect(Set(model.parameters.map(\.name)) == Set(fixture.parameters), "the same parameters as SMP")
        let (x, t) = fixture.batch()
        let tape = Tape()
        let logits = try model.forward(x, training: true, tape: tape)
        let loss = SegmentationLoss.bceDice(logits: logits.value, targets: t)
        #expect(abs(loss.loss - fixture.losses[0]) <= 1e-5 * fixture.losses[0], "loss \(loss.loss) vs \(fixture.losses[0])")
        tape.backward(from: logits, seed: loss.gradient)
        var grads: [String: Tensor] = [:]
        for p in model.parameters { grads[p.name] = p.grad }
        let (worst, key) = worstRatio(grads, fixture: fixture, stats: try TrainingFixture.array("grad_stats"),
                                      samples: try TrainingFixture.array("grad_samples"))
        print("gradient parity: worst |Δ| / max|grad| = \(worst) (\(key))")
        #expect(worst <= 1e-3, "worst gradient ratio \(worst) at \(key)")
        let norm = clipGradientNorm(model.parameters, maxNorm: .infinity)
        #expect(abs(Double(norm) - fixture.grad_norms[0]) <= 1e-4 * fixture.grad_norms[0], "global norm \(norm) vs \(fixture.grad_norms[0])")
    }
}
