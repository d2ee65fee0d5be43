import TensorEngine

/// An encoder hands the decoder its feature pyramid: the input itself, then
/// features at strides 2, 4, … 2^depth (SMP's `encoder_depth`, 5 by default).
public protocol FeatureEncoder: Sendable {
    /// Channels of each feature, input first (SMP's `encoder.out_channels`).
    var outChannels: [Int] { get }
    func features(_ input: Tensor) -> [Tensor]
    func macs(height: Int, width: Int) -> Int
}

/// torchvision's ResNet as SMP uses it (`encoder.conv1`, `encoder.bn1`,
/// `encoder.layerN.M.*`), with BatchNorm folded into the convolutions. With
/// depth d < 5 only the stem and layer1…layer(d−1) run, as SMP's forward; the
/// unused layers' keys, which SMP still saves, are accepted and ignored.
public struct ResNetEncoder: FeatureEncoder {
    public enum Variant: String, Sendable, CaseIterable {
        case resnet18, resnet34, resnet50

        var blocks: [Int] {
            switch self {
            case .resnet18: return [2, 2, 2, 2]
            case .resnet34, .resnet50: return [3, 4, 6, 3]
            }
        }
        var bottleneck: Bool { self == .resnet50 }
    }

    struct Block: Sendable {
        var convs: [Conv2D]
        var downsample: Conv2D?
    }

    public let variant: Variant
    /// Downsamplings (1…5): features at strides 2 … 2^depth.
    public let depth: Int
    public let outChannels: [Int]
    let stem: Conv2D
    let stages: [[Block]]

    public init(_ variant: Variant, weights: StateDict, depth: Int = 5, inChannels: Int = 3, prefix: String = "encoder") {
        precondition((1...5).contains(depth), "ResNet encoder depth \(depth)")
        self.variant = variant
        self.depth = depth
        let expansion = variant.bottleneck ? 4 : 1
        stem = Conv2D.load(weights, conv: "\(prefix).conv1", batchNorm: "\(prefix).bn1", inChannels: inChannels,
                           outChannels: 64, kernel: 7, stride: 2, padding: 3)
        var stages: [[Block]] = []
        var channels = 64
        for (stageIndex, count) in variant.blocks.enumerated().prefix(depth - 1) {
            let planes = 64 << stageIndex
            var blocks: [Block] = []
            for blockIndex in 0..<count {
                let stride = (stageIndex > 0 && blockIndex == 0) ? 2 : 1
                let key = "\(prefix).layer\(stageIndex + 1).\(blockIndex)"
                var convs: [Conv2D] = []
                if variant.bottleneck {
                    convs.append(.load(weights, conv: "\(key).conv1", batchNorm: "\(key).bn1", inChannels: channels, outChannels: planes, kernel: 1))
                    convs.append(.load(weights, conv: "\(key).conv2", batchNorm: "\(key).bn2", inChannels: planes, outChannels: planes, kernel: 3, stride: stride, padding: 1))
                    convs.append(.load(weights, conv: "\(key).conv3", batchNorm: "\(key).bn3", inChannels: planes, outChannels: planes * expansion, kernel: 1))
                } else {
                    convs.append(.load(weights, conv: "\(key).conv1", batchNorm: "\(key).bn1", inChannels: channels, outChannels: planes, kernel: 3, stride: stride, padding: 1))
                    convs.append(.load(weights, conv: "\(key).conv2", batchNorm: "\(key).bn2", inChannels: planes, outChannels: planes, kernel: 3, padding: 1))
                }
                var downsample: Conv2D? = nil
                if stride != 1 || channels != planes * expansion {
                    downsample = .load(weights, conv: "\(key).downsample.0", batchNorm: "\(key).downsample.1",
                                       inChannels: channels, outChannels: planes * expansion, kernel: 1, stride: stride)
                }
                blocks.append(Block(convs: convs, downsample: downsample))
                channels = planes * expansion
            }
            stages.append(blocks)
        }
        if depth < 5 { for unused in depth...4 { weights.ignore(prefix: "\(prefix).layer\(unused).") } }
        self.stages = stages
        outChannels = [inChannels, 64] + (0..<(depth - 1)).map { (64 << $0) * expansion }
    }

    public func features(_ input: Tensor) -> [Tensor] {
        var out: [Tensor] = [input]
        let x0 = stem(input, epilogue: .relu)
        out.append(x0)
        var x = Ops.maxPool2d(x0, kernel: 3, stride: 2, padding: 1)
        for stage in stages {
            for block in stage {
                let identity = block.downsample.map { $0(x) } ?? x
                var y = x
                for conv in block.convs.dropLast() { y = conv(y, epilogue: .relu) }
                y = block.convs.last!(y, epilogue: .addThenReLU(identity))
                x = y
            }
            out.append(x)
        }
        return out
    }

    public func macs(height: Int, width: Int) -> Int {
        var total = stem.macs(height: height, width: width)
        var (h, w) = stem.outputSize(height: height, width: width)
        h = (h + 2 - 3) / 2 + 1
        w = (w + 2 - 3) / 2 + 1
        for stage in stages {
            for block in stage {
                var (bh, bw) = (h, w)
                for conv in block.convs {
                    total += conv.macs(height: bh, width: bw)
                    (bh, bw) = conv.outputSize(height: bh, width: bw)
                }
                if let d = block.downsample { total += d.macs(height: h, width: w) }
                (h, w) = (bh, bw)
            }
        }
        return total
    }
}
