import TensorEngine

/// torchvision's DenseNet-121/169/201 as SMP 0.6's `DenseNetEncoder` (keys
/// `encoder.features.*`), trainable. Features as SMP returns them: relu0 after
/// conv0/norm0 (stride 2); each transition's norm+ReLU, tapped before its conv
/// and pool (strides 4, 8, 16); norm5 after the last dense block, no ReLU (stride 32).
///
/// A dense layer is pre-activation, norm1 → ReLU → conv1 (1×1) → norm2 → ReLU →
/// conv2 (3×3), on the concatenation of the block input and every earlier
/// layer's 32 new channels, as torchvision's `_DenseLayer` (memory_efficient off)
/// concatenates them. A transition's 1×1 conv and 2×2 average pool are both
/// linear and commute, so the pool runs first (4× less conv work), as in
/// inference.
final class TrainableDenseNet: TrainableEncoder {
    struct DenseLayer {
        let norm1: TrainableBatchNorm2d
        let conv1: TrainableConv2d
        let norm2: TrainableBatchNorm2d
        let conv2: TrainableConv2d
    }

    struct Transition {
        let norm: TrainableBatchNorm2d
        let conv: TrainableConv2d
    }

    static let growthRate = 32
    static let bottleneckWidth = 4 * 32  // bn_size · growth_rate
    static let initialFeatures = 64

    let outChannels: [Int]
    private let stem: ConvBatchNorm
    private let blocks: [[DenseLayer]]
    private let transitions: [Transition]
    private let norm5: TrainableBatchNorm2d

    /// `blockConfig`: layers per dense block (121: 6,12,24,16; 169: 6,12,32,32; 201: 6,12,48,32).
    init(blockConfig: [Int], weights: TrainableWeights) {
        let p = "encoder.features"
        stem = weights.convBN("\(p).conv0", "\(p).norm0", 3, Self.initialFeatures, kernel: 7, stride: 2, padding: 3)
        var channels = Self.initialFeatures
        var taps = [3, Self.initialFeatures]
        var blocks: [[DenseLayer]] = []
        var transitions: [Transition] = []
        for (b, count) in blockConfig.enumerated() {
            var layers: [DenseLayer] = []
            for l in 0..<count {
                let key = "\(p).denseblock\(b + 1).denselayer\(l + 1)"
                let c = channels + l * Self.growthRate
                let norm1 = weights.batchNorm("\(key).norm1", c)
                let conv1 = weights.conv("\(key).conv1", c, Self.bottleneckWidth, kernel: 1)
                let norm2 = weights.batchNorm("\(key).norm2", Self.bottleneckWidth)
                let conv2 = weights.conv("\(key).conv2", Self.bottleneckWidth, Self.growthRate, kernel: 3, padding: 1)
                layers.append(DenseLayer(norm1: norm1, conv1: conv1, norm2: norm2, conv2: conv2))
            }
            blocks.append(layers)
            channels += count * Self.growthRate
            taps.append(channels)
            if b < blockConfig.count - 1 {
                let key = "\(p).transition\(b + 1)"
                let norm = weights.batchNorm("\(key).norm", channels)
                transitions.append(Transition(norm: norm, conv: weights.conv("\(key).conv", channels, channels / 2, kernel: 1)))
                channels /= 2
            }
        }
        norm5 = weights.batchNorm("\(p).norm5", channels)
        self.blocks = blocks
        self.transitions = transitions
        outChannels = taps
    }

    func features(_ input: Node, training: Bool, tape: Tape?) -> [Node] {
        let x0 = stem(input, relu: true, training: training, tape: tape)
        var features = [x0]
        var x = TrainOps.maxPool2d(x0, kernel: 3, stride: 2, padding: 1, tape: tape)
        for (b, layers) in blocks.enumerated() {
            var parts = [x]
            for layer in layers {
                let joined = parts.count == 1 ? parts[0] : EncoderOps.concat(parts, tape: tape)
                var y = TrainOps.relu(layer.norm1.forward(joined, training: training, tape: tape), tape: tape)
                y = TrainOps.relu(layer.norm2.forward(layer.conv1.forward(y, tape: tape), training: training, tape: tape), tape: tape)
                parts.append(layer.conv2.forward(y, tape: tape))
            }
            let block = EncoderOps.concat(parts, tape: tape)
            if b < transitions.count {
                let tap = TrainOps.relu(transitions[b].norm.forward(block, training: training, tape: tape), tape: tape)
                features.append(tap)
                x = transitions[b].conv.forward(TrainOps.avgPool2d(tap, kernel: 2, stride: 2, tape: tape), tape: tape)
            } else {
                features.append(norm5.forward(block, training: training, tape: tape))
            }
        }
        return features
    }
}
