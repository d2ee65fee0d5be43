import Foundation
import TensorEngine

/// Weights for training from scratch, drawn as PyTorch + SMP 0.6 draw them
/// (same distributions, not the same numbers: the generator is ours, seeded).
///
/// - Encoder convolutions: the backbone's own init, which replaces PyTorch's
///   default kaiming_uniform(a=√5) in its constructor: torchvision ResNet and
///   timm HRNet kaiming_normal(fan_out, relu), torchvision DenseNet
///   kaiming_normal(fan_in). A conv bias keeps PyTorch's default U(±1/√fan_in).
/// - Decoder convolutions (SMP's initialize_decoder): kaiming_uniform(fan_in, relu), bias 0.
/// - Segmentation head (initialize_head): xavier_uniform, bias 0.
/// - Every BatchNorm: weight 1, bias 0, running mean 0, running variance 1.
enum ScratchInitialization {
    enum EncoderConv {
        case kaimingNormalFanOut
        case kaimingNormalFanIn
    }

    static func tensors(shapes: [(String, [Int])], encoderConv: EncoderConv, seed: UInt64) -> [String: Tensor] {
        let rank = Dictionary(shapes.map { ($0.0, $0.1.count) }, uniquingKeysWith: { a, _ in a })
        var out: [String: Tensor] = [:]
        for (key, shape) in shapes {
            let count = shape.reduce(1, *)
            var random = SeededGenerator(seed: seed, key: key)
            let module = key.split(separator: ".").dropLast().joined(separator: ".")
            let values: [Float]
            if shape.count == 4 {
                let receptive = shape[2] * shape[3]
                let (fanIn, fanOut) = (shape[1] * receptive, shape[0] * receptive)
                if key.hasPrefix("encoder.") {
                    let fan = encoderConv == .kaimingNormalFanOut ? fanOut : fanIn
                    let std = (2.0 / Double(fan)).squareRoot()
                    values = (0..<count).map { _ in Float(std * random.normal()) }
                } else if key.hasPrefix("segmentation_head.") {
                    let bound = (6.0 / Double(fanIn + fanOut)).squareRoot()
                    values = (0..<count).map { _ in Float(bound * (2 * random.uniform() - 1)) }
                } else {
                    let bound = (6.0 / Double(fanIn)).squareRoot()  // gain √2 · √(3 / fan_in)
                    values = (0..<count).map { _ in Float(bound * (2 * random.uniform() - 1)) }
                }
            } else if key.hasSuffix(".running_var") {
                values = [Float](repeating: 1, count: count)
            } else if key.hasSuffix(".bias"), rank["\(module).weight"] == 4 {
                // A conv's bias: PyTorch's default in the encoder, 0 where SMP re-initialises.
                if key.hasPrefix("encoder."), let weight = shapes.first(where: { $0.0 == "\(module).weight" })?.1 {
                    let bound = 1 / Double(weight.dropFirst().reduce(1, *)).squareRoot()
                    values = (0..<count).map { _ in Float(bound * (2 * random.uniform() - 1)) }
                } else {
                    values = [Float](repeating: 0, count: count)
                }
            } else if key.hasSuffix(".weight") {
                values = [Float](repeating: 1, count: count)  // BatchNorm γ
            } else {
                values = [Float](repeating: 0, count: count)  // BatchNorm β, running mean
            }
            out[key] = Tensor(shape: shape, values: values)
        }
        return out
    }
}

/// SplitMix64 seeded by the run's seed and the key's FNV-1a hash: each tensor
/// has its own stream, so its values do not depend on the order keys are drawn.
struct SeededGenerator {
    private var state: UInt64

    init(seed: UInt64, key: String) {
        state = seed &* 0x9e37_79b9_7f4a_7c15 ^ DeterministicFill.fnv1a64(key)
    }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    mutating func uniform() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    /// Standard normal (Box–Muller; 1 − u keeps the logarithm finite).
    mutating func normal() -> Double {
        let u1 = 1 - uniform(), u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
}
