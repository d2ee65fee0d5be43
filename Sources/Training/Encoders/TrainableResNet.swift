import TensorEngine

/// torchvision's ResNet-18/34 as SMP's `ResNetEncoder` (keys `encoder.conv1`,
/// `encoder.bn1`, `encoder.layerN.M.*`). With depth d < 5 only the stem and
/// layer1…layer(d−1) exist: SMP keeps the unused layers in its state_dict, so
/// their keys are accepted and ignored on load, and never exported.
final class TrainableResNet: TrainableEncoder {
    struct ResidualBlock {
        let first: ConvBatchNorm
        let second: ConvBatchNorm
        let downsample: ConvBatchNorm?
    }

    let outChannels: [Int]
    private let stem: ConvBatchNorm
    private let stages: [[ResidualBlock]]

    init(blocks: [Int], depth: Int, weights: TrainableWeights) {
        precondition((1...5).contains(depth) && blocks.count == 4, "ResNet depth \(depth)")
        stem = weights.convBN("encoder.conv1", "encoder.bn1", 3, 64, kernel: 7, stride: 2, padding: 3)
        var stages: [[ResidualBlock]] = []
        var channels = 64
        for (stageIndex, count) in blocks.enumerated().prefix(depth - 1) {
            let planes = 64 << stageIndex
            var stage: [ResidualBlock] = []
            for blockIndex in 0..<count {
                let stride = (stageIndex > 0 && blockIndex == 0) ? 2 : 1
                let key = "encoder.layer\(stageIndex + 1).\(blockIndex)"
                let first = weights.convBN("\(key).conv1", "\(key).bn1", channels, planes, kernel: 3, stride: stride, padding: 1)
                let second = weights.convBN("\(key).conv2", "\(key).bn2", planes, planes, kernel: 3, padding: 1)
                let downsample = (stride != 1 || channels != planes)
                    ? weights.convBN("\(key).downsample.0", "\(key).downsample.1", channels, planes, kernel: 1, stride: stride) : nil
                stage.append(ResidualBlock(first: first, second: second, downsample: downsample))
                channels = planes
            }
            stages.append(stage)
        }
        if depth < 5 { for unused in depth...4 { weights.ignore(prefix: "encoder.layer\(unused).") } }
        self.stages = stages
        outChannels = [3, 64] + (0..<(depth - 1)).map { 64 << $0 }
    }

    func features(_ input: Node, training: Bool, tape: Tape?) -> [Node] {
        let x0 = stem(input, relu: true, training: training, tape: tape)
        var features = [x0]
        guard !stages.isEmpty else { return features }
        var x = TrainOps.maxPool2d(x0, kernel: 3, stride: 2, padding: 1, tape: tape)
        for stage in stages {
            for block in stage {
                let identity = block.downsample.map { $0(x, relu: false, training: training, tape: tape) } ?? x
                let y = block.first(x, relu: true, training: training, tape: tape)
                let z = block.second(y, relu: false, training: training, tape: tape)
                x = TrainOps.relu(TrainOps.add(z, identity, tape: tape), tape: tape)
            }
            features.append(x)
        }
        return features
    }
}
