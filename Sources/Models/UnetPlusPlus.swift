import TensorEngine

/// SMP 0.6's `UnetPlusPlusDecoder`: nested dense skip blocks `x_{depth}_{layer}`,
/// nearest 2× upsampling, no attention, no center block; followed by the 3×3
/// segmentation head. Key names are SMP's (`decoder.blocks.x_i_j.convN.{0,1}`,
/// `segmentation_head.0`).
public struct UnetPlusPlusDecoder: Sendable {
    struct Block: Sendable {
        let conv1: Conv2D
        let conv2: Conv2D
    }

    /// One decoder step: a block applied to one tensor, joined with skips.
    struct Step: Sendable {
        let block: String
        let input: String
        let skips: [String]
    }

    let blocks: [String: Block]
    let steps: [Step]
    let outputKey: String
    public let decoderChannels: [Int]

    public init(encoderChannels: [Int], decoderChannels: [Int], weights: StateDict, prefix: String = "decoder.blocks") throws {
        guard encoderChannels.count == decoderChannels.count + 1 else {
            throw ModelError("UNet++ needs \(encoderChannels.count - 1) decoder channels for this encoder, got \(decoderChannels.count)")
        }
        self.decoderChannels = decoderChannels
        // As SMP: drop the input-resolution feature, start from the encoder's head.
        let encoder = Array(encoderChannels.dropFirst().reversed())
        let inChannels = [encoder[0]] + decoderChannels.dropLast()
        let skipChannels = Array(encoder.dropFirst()) + [0]
        let outChannels = decoderChannels
        let depth = inChannels.count - 1

        var blocks: [String: Block] = [:]
        func makeBlock(_ name: String, _ inCh: Int, _ skipCh: Int, _ outCh: Int) {
            let key = "\(prefix).\(name)"
            blocks[name] = Block(
                conv1: .load(weights, conv: "\(key).conv1.0", batchNorm: "\(key).conv1.1", inChannels: inCh + skipCh,
                             outChannels: outCh, kernel: 3, padding: 1),
                conv2: .load(weights, conv: "\(key).conv2.0", batchNorm: "\(key).conv2.1", inChannels: outCh,
                             outChannels: outCh, kernel: 3, padding: 1))
        }
        for layer in 0..<depth {
            for d in 0...layer {
                if d == 0 {
                    makeBlock("x_0_\(layer)", inChannels[layer], skipChannels[layer] * (layer + 1), outChannels[layer])
                } else {
                    makeBlock("x_\(d)_\(layer)", skipChannels[layer - 1], skipChannels[layer] * (layer + 1 - d), skipChannels[layer])
                }
            }
        }
        makeBlock("x_0_\(depth)", inChannels[depth], 0, outChannels[depth])
        self.blocks = blocks

        // The forward schedule of SMP's loop, with features named f0 (head) … f4.
        var steps: [Step] = []
        for layer in 0..<depth {
            for d in 0..<(depth - layer) {
                if layer == 0 {
                    steps.append(Step(block: "x_\(d)_\(d)", input: "f\(d)", skips: ["f\(d + 1)"]))
                } else {
                    let l = d + layer
                    let dense = ((d + 1)...l).map { "x_\($0)_\(l)" }
                    steps.append(Step(block: "x_\(d)_\(l)", input: "x_\(d)_\(l - 1)", skips: dense + ["f\(l + 1)"]))
                }
            }
        }
        steps.append(Step(block: "x_0_\(depth)", input: "x_0_\(depth - 1)", skips: []))
        self.steps = steps
        outputKey = "x_0_\(depth)"
    }

    /// Runs the decoder on an encoder's features (input-resolution feature first),
    /// releasing each intermediate as soon as no later step needs it.
    public func callAsFunction(_ features: [Tensor]) -> Tensor {
        var values: [String: Tensor] = [:]
        for (i, f) in features.dropFirst().reversed().enumerated() { values["f\(i)"] = f }
        var remainingUses: [String: Int] = [:]
        for step in steps { for key in [step.input] + step.skips { remainingUses[key, default: 0] += 1 } }
        for step in steps {
            let block = blocks[step.block]!
            let joined = Ops.upsampleNearest2xConcat(values[step.input]!, step.skips.map { values[$0]! })
            for key in [step.input] + step.skips {
                remainingUses[key]! -= 1
                if remainingUses[key] == 0 { values[key] = nil }
            }
            let y = block.conv1(joined, epilogue: .relu)
            values[step.block] = block.conv2(y, epilogue: .relu)
        }
        return values[outputKey]!
    }

    public func macs(encoderShapes: [(channels: Int, height: Int, width: Int)]) -> Int {
        var sizes: [String: (Int, Int)] = [:]
        for (i, f) in encoderShapes.dropFirst().reversed().enumerated() { sizes["f\(i)"] = (f.height, f.width) }
        var total = 0
        for step in steps {
            let (h, w) = sizes[step.input]!
            let block = blocks[step.block]!
            total += block.conv1.macs(height: 2 * h, width: 2 * w) + block.conv2.macs(height: 2 * h, width: 2 * w)
            sizes[step.block] = (2 * h, 2 * w)
        }
        return total
    }
}

extension UnetPlusPlusDecoder {
    /// The forward schedule (block, joined input, skips in concatenation order), for
    /// models that rebuild this decoder, such as the trainable one in Training.
    public var schedule: [(block: String, input: String, skips: [String])] {
        steps.map { ($0.block, $0.input, $0.skips) }
    }

    /// Input and output channels of a block's first convolution (the second maps out → out).
    public func blockChannels(_ block: String) -> (inChannels: Int, outChannels: Int)? {
        blocks[block].map { ($0.conv1.inChannels, $0.conv1.outChannels) }
    }
}
