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
    let losses_float64: [Double]
    let grad_norms_float64: [Double]
    let parameters: [String]
    let running: [String]
    let weight_spread_float64: [Float]
    let running_spread_float64: [Float]
    let adamw: AdamWCase
    let one_cycle: OneCycleCase

    struct OneCycleCase: Decodable {
        let max_lr: Float
        let total_steps: Int
        let lr: [Double]
        let beta1: [Double]
    }

    struct AdamWCase: Decodable {
        let keys: [String]
        let shapes: [[Int]]
        let lr: Float
        let max_norm: Float
        let norms: [Double]
    }

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
                report: (Int, String, Float) -> Void = { _, _, _ in }) -> (Float, String) {
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
        report(index, key, ratio)
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
    /// AdamW and clipping alone, on gradients given by the fixture (every |g| far
    /// above eps, so the comparison is well conditioned): three steps, clipping
    /// active in the first; weights within 1e-6 of each tensor's max |w|.
    @Test func adamWMatchesPyTorchOnGivenGradients() throws {
        let fixture = try TrainingFixture.load().adamw
        let parameters = zip(fixture.keys, fixture.shapes).map { key, shape in
            Parameter(name: key, value: DeterministicFill.parameter(name: key, shape: shape))
        }
        let optimizer = AdamW(parameters: parameters, learningRate: fixture.lr)
        for step in 0..<3 {
            for p in parameters {
                let u = DeterministicFill.uniform(name: "\(p.name).grad.\(step)", count: p.grad.count)
                for i in 0..<u.count {
                    let g = (2 * u[i] - 1) * Float(0.05 / Double(step + 1))
                    p.grad.storage[i] = abs(g) < 1e-4 ? 1e-4 : g
                }
            }
            let norm = clipGradientNorm(parameters, maxNorm: fixture.max_norm)
            #expect(abs(Double(norm) - fixture.norms[step]) <= 1e-6 * fixture.norms[step], "step \(step + 1) norm \(norm)")
            optimizer.update()
        }
        #expect(fixture.norms[0] > Double(fixture.max_norm), "clipping is exercised")
        let expected = try TrainingFixture.array("adamw_weights")
        var offset = 0, worst: Float = 0
        for p in parameters {
            var scale: Float = 0
            for i in 0..<p.value.count { scale = max(scale, abs(expected.storage[offset + i])) }
            for i in 0..<p.value.count { worst = max(worst, abs(p.value.storage[i] - expected.storage[offset + i]) / scale) }
            offset += p.value.count
        }
        #expect(offset == expected.count)
        print("AdamW on given gradients: worst |Δ| / max|w| = \(worst)")
        #expect(worst <= 1e-6, "worst weight ratio \(worst)")
    }

    /// Three full training steps (forward, BCE + Dice, backward, clipping active
    /// in steps 1–2, AdamW lr 1e-3) against PyTorch float32. Adam divides each
    /// gradient by its own RMS, so entries with |g| near eps turn float32
    /// rounding into visible weight differences: PyTorch float32 itself lands up
    /// to 0.13 × max|w| from PyTorch float64 here. Each tensor must therefore be
    /// within max(1e-4, 2 × that tensor's float32-vs-float64 spread) of PyTorch
    /// float32, as must the BatchNorm running statistics; losses and gradient
    /// norms likewise, per step.
    @Test func threeTrainingStepsMatchPyTorch() throws {
        let fixture = try TrainingFixture.load()
        let model = try fixture.model()
        let (x, t) = fixture.batch()
        let optimizer = AdamW(parameters: model.parameters, learningRate: fixture.lr)
        for step in 0..<fixture.steps {
            let result = try model.trainStep(input: x, targets: t, optimizer: optimizer, maxGradientNorm: fixture.max_norm)
            let lossTolerance = max(1e-5, 2 * abs(fixture.losses[step] - fixture.losses_float64[step]) / fixture.losses[step])
            let lossRatio = abs(result.loss - fixture.losses[step]) / fixture.losses[step]
            print("step \(step + 1): loss \(result.loss) vs \(fixture.losses[step]) (relative \(lossRatio), allowed \(lossTolerance))")
            #expect(lossRatio <= lossTolerance, "step \(step + 1) loss \(result.loss) vs \(fixture.losses[step])")
            let norm = Double(result.gradientNorm ?? 0)
            let normTolerance = max(1e-4, 2 * abs(fixture.grad_norms[step] - fixture.grad_norms_float64[step]) / fixture.grad_norms[step])
            let normRatio = abs(norm - fixture.grad_norms[step]) / fixture.grad_norms[step]
            print("step \(step + 1): gradient norm \(norm) vs \(fixture.grad_norms[step]) (relative \(normRatio), allowed \(normTolerance))")
            #expect(normRatio <= normTolerance, "step \(step + 1) norm \(norm) vs \(fixture.grad_norms[step])")
        }
        let state = model.stateDict()
        var worstExcess: Float = 0, worstExcessKey = "", failures: [String] = []
        let (worst, key) = worstRatio(state, fixture: fixture, stats: try TrainingFixture.array("weight_stats"),
                                      samples: try TrainingFixture.array("weight_samples")) { index, key, ratio in
            let allowed = max(1e-4, 2 * fixture.weight_spread_float64[index])
            if ratio / allowed > worstExcess { (worstExcess, worstExcessKey) = (ratio / allowed, key) }
            if ratio > allowed { failures.append("\(key): \(ratio) > \(allowed)") }
        }
        print("3 steps: worst |Δ| / max|w| = \(worst) (\(key)); worst ratio / allowed = \(worstExcess) (\(worstExcessKey))")
        #expect(failures.isEmpty, "weights off: \(failures.prefix(5))")

        let running = try TrainingFixture.array("running")
        var offset = 0, worstRunning: Float = 0, worstRunningExcess: Float = 0
        failures = []
        for (index, key) in fixture.running.enumerated() {
            let tensor = try #require(state[key], "no \(key)")
            var scale: Float = 0, ratio: Float = 0
            for i in 0..<tensor.count { scale = max(scale, abs(running.storage[offset + i])) }
            for i in 0..<tensor.count { ratio = max(ratio, abs(tensor.storage[i] - running.storage[offset + i]) / scale) }
            let allowed = max(1e-4, 2 * fixture.running_spread_float64[index])
            worstRunning = max(worstRunning, ratio)
            worstRunningExcess = max(worstRunningExcess, ratio / allowed)
            if ratio > allowed { failures.append("\(key): \(ratio) > \(allowed)") }
            offset += tensor.count
        }
        #expect(offset == running.count)
        print("3 steps: running statistics worst |Δ| / max|stat| = \(worstRunning); worst ratio / allowed = \(worstRunningExcess)")
        #expect(failures.isEmpty, "running statistics off: \(failures.prefix(5))")
    }
}
