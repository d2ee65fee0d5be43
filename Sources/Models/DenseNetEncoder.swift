import TensorEngine

extension ChannelAffine {
    /// An eval-mode BatchNorm2d (`<key>.weight|bias|running_mean|running_var`) as a per-channel affine.
    static func load(_ weights: StateDict, batchNorm key: String, channels: Int) -> ChannelAffine {
        ChannelAffine(gamma: weights.take("\(key).weight", shape: [channels]),
                      beta: weights.take("\(key).bias", shape: [channels]),
                      mean: weights.take("\(key).running_mean", shape: [channels]),
                      variance: weights.take("\(key).running_var", shape: [channels]))
    }
}

/// torchvision's DenseNet as SMP 0.6's `DenseNetEncoder` uses it (keys
/// `encoder.features.*`). Features, as SMP returns them: the input; relu0 after
/// conv0/norm0 (stride 2); the output of each transition's norm+ReLU, tapped
/// before its conv and pool (strides 4, 8, 16); norm5 after the last dense
/// block, without ReLU (stride 32).
///
/// Dense layers are pre-activation (BatchNorm → ReLU → conv), so norm1 runs as
/// a per-channel affine+ReLU pass over the block's channels so far; norm2
/// follows conv1 directly and is folded into it. Each block owns one buffer
/// with all its output channels, and every layer appends its 32 new channels
/// to it, so concatenation copies each value once.
public struct DenseNetEncoder: FeatureEncoder {
    public enum Variant: String, Sendable, CaseIterable {
        case densenet121, densenet169, densenet201

        var blockConfig: [Int] {
            switch self {
            case .densenet121: return [6, 12, 24, 16]
            case .densenet169: return [6, 12, 32, 32]
            case .densenet201: return [6, 12, 48, 32]
            }
        }
    }

    static let growthRate = 32
    static let bottleneckWidth = 4 * 32  // bn_size · growth_rate
    static let initialFeatures = 64

    struct Layer: Sendable {
        /// norm1 + ReLU over the first `norm1.channels` channels of the block buffer.
        let norm1: ChannelAffine
        /// conv1 (1×1) with norm2 folded; ReLU follows.
        let conv1: Conv2D
        /// conv2 (3×3, padding 1), no BatchNorm after it.
        let conv2: Conv2D
    }

    struct Block: Sendable {
        let inChannels: Int
        let layers: [Layer]
        var outChannels: Int { inChannels + layers.count * DenseNetEncoder.growthRate }
    }

    struct Transition: Sendable {
        let norm: ChannelAffine
        /// 1×1, no bias, halves the channels; runs after the 2×2 average pool
        /// (the two are linear and commute, and pooling first is 4× cheaper).
        let conv: Conv2D
    }

    public let variant: Variant
    public let outChannels: [Int]
    let stem: Conv2D
    let blocks: [Block]
    let transitions: [Transition]
    let norm5: ChannelAffine

    public init(_ variant: Variant, weights: StateDict, inChannels: Int = 3, prefix: String = "encoder.features") {
        self.variant = variant
        stem = .load(weights, conv: "\(prefix).conv0", batchNorm: "\(prefix).norm0", inChannels: inChannels,
                     outChannels: Self.initialFeatures, kernel: 7, stride: 2, padding: 3)
        var channels = Self.initialFeatures
        var blocks: [Block] = []
        var transitions: [Transition] = []
        var taps = [inChannels, Self.initialFeatures]
        for (b, count) in variant.blockConfig.enumerated() {
            let blockKey = "\(prefix).denseblock\(b + 1)"
            var layers: [Layer] = []
            for l in 0..<count {
                let key = "\(blockKey).denselayer\(l + 1)"
                let c = channels + l * Self.growthRate
                let norm1 = ChannelAffine.load(weights, batchNorm: "\(key).norm1", channels: c)
                let conv1 = Conv2D.load(weights, conv: "\(key).conv1", batchNorm: "\(key).norm2", inChannels: c,
                                        outChannels: Self.bottleneckWidth, kernel: 1)
                let conv2 = Conv2D.load(weights, conv: "\(key).conv2", batchNorm: nil, inChannels: Self.bottleneckWidth,
                                        outChannels: Self.growthRate, kernel: 3, padding: 1)
                layers.append(Layer(norm1: norm1, conv1: conv1, conv2: conv2))
            }
            let block = Block(inChannels: channels, layers: layers)
            blocks.append(block)
            channels = block.outChannels
            taps.append(channels)
            if b < variant.blockConfig.count - 1 {
                let key = "\(prefix).transition\(b + 1)"
                let norm = ChannelAffine.load(weights, batchNorm: "\(key).norm", channels: channels)
                let conv = Conv2D.load(weights, conv: "\(key).conv", batchNorm: nil, inChannels: channels,
                                       outChannels: channels / 2, kernel: 1)
                transitions.append(Transition(norm: norm, conv: conv))
                channels /= 2
            }
        }
        norm5 = .load(weights, batchNorm: "\(prefix).norm5", channels: channels)
        self.blocks = blocks
        self.transitions = transitions
        outChannels = taps
    }

    /// Runs a dense block on `input`, returning the buffer with all its channels.
    func run(_ block: Block, _ input: Tensor) -> Tensor {
        let buffer = Tensor(shape: [input.batch, block.outChannels, input.height, input.width])
        Ops.copyChannels(input, into: buffer, at: 0)
        var filled = block.inChannels
        for layer in block.layers {
            let activated = layer.norm1(buffer, relu: true)
            let bottleneck = layer.conv1(activated, epilogue: .relu)
            let new = layer.conv2(bottleneck)
            Ops.copyChannels(new, into: buffer, at: filled)
            filled += Self.growthRate
        }
        return buffer
    }

    public func features(_ input: Tensor) -> [Tensor] {
        var out: [Tensor] = [input]
        let x0 = stem(input, epilogue: .relu)
        out.append(x0)
        var x = Ops.maxPool2d(x0, kernel: 3, stride: 2, padding: 1)
        for (b, block) in blocks.enumerated() {
            let buffer = run(block, x)
            if b < transitions.count {
                let tap = transitions[b].norm(buffer, relu: true)
                out.append(tap)
                x = transitions[b].conv(Ops.avgPool2d(tap, kernel: 2, stride: 2))
            } else {
                out.append(norm5(buffer, relu: false))
            }
        }
        return out
    }

    public func macs(height: Int, width: Int) -> Int {
        var total = stem.macs(height: height, width: width)
        var (h, w) = stem.outputSize(height: height, width: width)
        h = (h + 2 - 3) / 2 + 1
        w = (w + 2 - 3) / 2 + 1
        for (b, block) in blocks.enumerated() {
            for layer in block.layers {
                total += layer.conv1.macs(height: h, width: w) + layer.conv2.macs(height: h, width: w)
            }
            if b < transitions.count {
                (h, w) = (h / 2, w / 2)
                total += transitions[b].conv.macs(height: h, width: w)
            }
        }
        return total
    }
}
