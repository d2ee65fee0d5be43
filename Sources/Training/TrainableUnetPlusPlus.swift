import Models
import TensorEngine

/// SMP 0.6's UnetPlusPlus with a torchvision ResNet-18/34 encoder, trainable:
/// the same graph and state_dict keys as `SegmentationModel` (the decoder's
/// blocks and step schedule come from `UnetPlusPlusDecoder` itself), with
/// unfolded convolutions and BatchNorm layers that learn. `stateDict()` gives
/// weights `SegmentationModel` loads unchanged.
public final class TrainableUnetPlusPlus {
    public enum Encoder: String, Sendable, CaseIterable {
        case resnet18, resnet34

        var blocks: [Int] { self == .resnet18 ? [2, 2, 2, 2] : [3, 4, 6, 3] }
        public var encoderName: EncoderName { self == .resnet18 ? .resnet18 : .resnet34 }
    }

    struct ResidualBlock {
        let first: ConvBatchNorm
        let second: ConvBatchNorm
        let downsample: ConvBatchNorm?
    }

    public let encoder: Encoder
    public let decoderChannels: [Int]
    public let classes: Int
    /// Every learnable tensor, in PyTorch's `named_parameters()` order.
    public private(set) var parameters: [Parameter] = []
    /// Every BatchNorm, in state_dict order.
    public private(set) var batchNorms: [TrainableBatchNorm2d] = []
    private var stem: ConvBatchNorm!
    private var stages: [[ResidualBlock]] = []
    private var decoderBlocks: [String: (ConvBatchNorm, ConvBatchNorm)] = [:]
    private let schedule: [(block: String, input: String, skips: [String])]
    private let outputBlock: String
    private var head: TrainableConv2d!

    /// Builds the model from a state_dict with SMP's key names (num_batches_tracked
    /// keys are accepted and ignored); every missing, misshapen or unexpected key is reported.
    public init(encoder: Encoder, decoderChannels: [Int] = [256, 128, 64, 32, 16], classes: Int = 29,
                weights: [String: Tensor]) throws {
        self.encoder = encoder
        self.decoderChannels = decoderChannels
        self.classes = classes
        let reference = try UnetPlusPlusDecoder(encoderChannels: [3, 64, 64, 128, 256, 512], decoderChannels: decoderChannels,
                                                weights: StateDict([:], source: "decoder schedule", recording: true))
        schedule = reference.schedule
        outputBlock = schedule.last!.block
        let source = StateDict(weights.filter { !$0.key.hasSuffix(".num_batches_tracked") }, source: "trainable UNet++")

        func parameter(_ key: String, _ shape: [Int]) -> Parameter {
            let p = Parameter(name: key, value: Tensor(shape: shape, values: source.take(key, shape: shape)))
            parameters.append(p)
            return p
        }
        func convBN(_ conv: String, _ norm: String, _ inChannels: Int, _ outChannels: Int, kernel: Int,
                    stride: Int = 1, padding: Int = 0) -> ConvBatchNorm {
            let c = TrainableConv2d(weight: parameter("\(conv).weight", [outChannels, inChannels, kernel, kernel]), bias: nil,
                                    stride: stride, padding: padding)
            let weight = parameter("\(norm).weight", [outChannels])
            let bias = parameter("\(norm).bias", [outChannels])
            let bn = TrainableBatchNorm2d(name: norm, weight: weight, bias: bias,
                                          runningMean: Tensor(shape: [outChannels], values: source.take("\(norm).running_mean", shape: [outChannels])),
                                          runningVar: Tensor(shape: [outChannels], values: source.take("\(norm).running_var", shape: [outChannels])))
            batchNorms.append(bn)
            return ConvBatchNorm(conv: c, norm: bn)
        }

        stem = convBN("encoder.conv1", "encoder.bn1", 3, 64, kernel: 7, stride: 2, padding: 3)
        var channels = 64
        for (stageIndex, count) in encoder.blocks.enumerated() {
            let planes = 64 << stageIndex
            var blocks: [ResidualBlock] = []
            for blockIndex in 0..<count {
                let stride = (stageIndex > 0 && blockIndex == 0) ? 2 : 1
                let key = "encoder.layer\(stageIndex + 1).\(blockIndex)"
                let first = convBN("\(key).conv1", "\(key).bn1", channels, planes, kernel: 3, stride: stride, padding: 1)
                let second = convBN("\(key).conv2", "\(key).bn2", planes, planes, kernel: 3, padding: 1)
                let downsample = (stride != 1 || channels != planes)
                    ? convBN("\(key).downsample.0", "\(key).downsample.1", channels, planes, kernel: 1, stride: stride) : nil
                blocks.append(ResidualBlock(first: first, second: second, downsample: downsample))
                channels = planes
            }
            stages.append(blocks)
        }
        // Blocks in SMP's ModuleDict order: x_{d}_{layer} for layer, then d; the last block at the end.
        let depth = decoderChannels.count - 1
        var blockOrder: [String] = []
        for layer in 0..<depth { for d in 0...layer { blockOrder.append("x_\(d)_\(layer)") } }
        blockOrder.append("x_0_\(depth)")
        for name in blockOrder {
            guard let (inChannels, outChannels) = reference.blockChannels(name) else {
                throw ModelError("decoder has no block \(name)")
            }
            let key = "decoder.blocks.\(name)"
            decoderBlocks[name] = (convBN("\(key).conv1.0", "\(key).conv1.1", inChannels, outChannels, kernel: 3, padding: 1),
                                   convBN("\(key).conv2.0", "\(key).conv2.1", outChannels, outChannels, kernel: 3, padding: 1))
        }
        head = TrainableConv2d(weight: parameter("segmentation_head.0.weight", [classes, decoderChannels.last!, 3, 3]),
                               bias: parameter("segmentation_head.0.bias", [classes]), stride: 1, padding: 1)
        try source.finish()
    }

    /// The model with deterministic weights (DeterministicFill by key), as
    /// `SegmentationModel.deterministic` and the fixture script build them.
    public static func deterministic(encoder: Encoder, decoderChannels: [Int] = [256, 128, 64, 32, 16],
                                     classes: Int = 29) throws -> TrainableUnetPlusPlus {
        var tensors: [String: Tensor] = [:]
        for (key, shape) in SegmentationModel.parameterShapes(encoder: encoder.encoderName, decoderChannels: decoderChannels,
                                                              classes: classes) {
            tensors[key] = DeterministicFill.parameter(name: key, shape: shape)
        }
        return try TrainableUnetPlusPlus(encoder: encoder, decoderChannels: decoderChannels, classes: classes, weights: tensors)
    }

    /// Logits for a normalised NCHW batch (sides multiples of 32). With `training`,
    /// BatchNorm uses batch statistics and updates its running statistics; with a
    /// tape, everything needed for `Tape.backward` is recorded.
    public func forward(_ input: Tensor, training: Bool, tape: Tape?) throws -> Node {
        guard input.rank == 4, input.channels == 3 else { throw ModelError("model expects input [N, 3, H, W], got \(input.shape)") }
        guard input.height % 32 == 0, input.width % 32 == 0 else {
            throw ModelError("input \(input.height)x\(input.width) is not a multiple of 32 on both sides")
        }
        var features: [Node] = []
        let x0 = stem(Node(input, requiresGradient: false), relu: true, training: training, tape: tape)
        features.append(x0)
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
        var values: [String: Node] = [:]
        for (i, f) in features.reversed().enumerated() { values["f\(i)"] = f }
        for step in schedule {
            let (conv1, conv2) = decoderBlocks[step.block]!
            let joined = TrainOps.upsampleConcat(values[step.input]!, step.skips.map { values[$0]! }, tape: tape)
            let y = conv1(joined, relu: true, training: training, tape: tape)
            values[step.block] = conv2(y, relu: true, training: training, tape: tape)
        }
        return head.forward(values[outputBlock]!, tape: tape)
    }

    /// Parameters and BatchNorm running statistics under SMP's keys (copies), the
    /// state_dict `SegmentationModel` loads (num_batches_tracked is left out, as there).
    public func stateDict() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for p in parameters { out[p.name] = p.value.copy() }
        for bn in batchNorms {
            out["\(bn.name).running_mean"] = bn.runningMean.copy()
            out["\(bn.name).running_var"] = bn.runningVar.copy()
        }
        return out
    }

    /// One step on a batch: forward in training mode, BCE + Dice, backward,
    /// optional clipping by global norm, AdamW update. Returns the loss before the update.
    @discardableResult
    public func trainStep(input: Tensor, targets: Tensor, optimizer: AdamW, maxGradientNorm: Float? = nil) throws -> TrainStepResult {
        optimizer.zeroGrad()
        let tape = Tape()
        let logits = try forward(input, training: true, tape: tape)
        let loss = SegmentationLoss.bceDice(logits: logits.value, targets: targets)
        tape.backward(from: logits, seed: loss.gradient)
        let norm = maxGradientNorm.map { clipGradientNorm(parameters, maxNorm: $0) }
        optimizer.update()
        return TrainStepResult(loss: loss.loss, gradientNorm: norm)
    }
}

public struct TrainStepResult: Sendable {
    public let loss: Double
    /// The global gradient norm before clipping, when clipping was asked for.
    public let gradientNorm: Float?
}
