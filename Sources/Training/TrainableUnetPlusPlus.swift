import Models
import TensorEngine

/// SMP 0.6's UnetPlusPlus (ResNet, DenseNet or timm HRNet encoder), trainable: the same graph and state_dict keys as
/// `SegmentationModel` (the decoder's blocks and step schedule come from
/// `UnetPlusPlusDecoder` itself), with unfolded convolutions and BatchNorm
/// layers that learn. The encoder is a `TrainableEncoder` (Encoders/).
/// `stateDict()` gives weights `SegmentationModel` loads unchanged.
public final class TrainableUnetPlusPlus {
    /// Encoders that train, by SMP's names: `Encoder(rawValue: "tu-hrnet_w18")`, or
    /// `Encoder(EncoderName.hrnetW18)` from an inference encoder name.
    public enum Encoder: String, Sendable, CaseIterable {
        case resnet18, resnet34
        case densenet121, densenet169, densenet201
        case hrnetW18 = "tu-hrnet_w18", hrnetW32 = "tu-hrnet_w32", hrnetW48 = "tu-hrnet_w48"

        public var encoderName: EncoderName {
            switch self {
            case .resnet18: return .resnet18
            case .resnet34: return .resnet34
            case .densenet121: return .densenet121
            case .densenet169: return .densenet169
            case .densenet201: return .densenet201
            case .hrnetW18: return .hrnetW18
            case .hrnetW32: return .hrnetW32
            case .hrnetW48: return .hrnetW48
            }
        }

        /// The trainable counterpart of an inference encoder (nil for resnet50, which does not train yet).
        public init?(_ name: EncoderName) { self.init(rawValue: name.rawValue) }

        /// The backbone's own conv initialiser (see `ScratchInitialization`).
        var scratchInit: ScratchInitialization.EncoderConv {
            switch self {
            case .resnet18, .resnet34, .hrnetW18, .hrnetW32, .hrnetW48: return .kaimingNormalFanOut
            case .densenet121, .densenet169, .densenet201: return .kaimingNormalFanIn
            }
        }

        func build(depth: Int, weights: TrainableWeights) -> TrainableEncoder {
            switch self {
            case .resnet18: return TrainableResNet(blocks: [2, 2, 2, 2], depth: depth, weights: weights)
            case .resnet34: return TrainableResNet(blocks: [3, 4, 6, 3], depth: depth, weights: weights)
            case .densenet121: return TrainableDenseNet(blockConfig: [6, 12, 24, 16], weights: weights)
            case .densenet169: return TrainableDenseNet(blockConfig: [6, 12, 32, 32], weights: weights)
            case .densenet201: return TrainableDenseNet(blockConfig: [6, 12, 48, 32], weights: weights)
            case .hrnetW18: return TrainableHRNet(width: 18, weights: weights)
            case .hrnetW32: return TrainableHRNet(width: 32, weights: weights)
            case .hrnetW48: return TrainableHRNet(width: 48, weights: weights)
            }
        }
    }

    public let encoder: Encoder
    /// SMP's `encoder_depth` (3…5; below 5 for ResNet encoders only, as `SegmentationModel`).
    public let encoderDepth: Int
    public let decoderChannels: [Int]
    public let classes: Int
    /// Every learnable tensor, in PyTorch's `named_parameters()` order.
    public let parameters: [Parameter]
    /// Every BatchNorm, in state_dict order.
    public let batchNorms: [TrainableBatchNorm2d]
    private let encoderNetwork: TrainableEncoder
    private let decoderBlocks: [String: (ConvBatchNorm, ConvBatchNorm)]
    private let schedule: [(block: String, input: String, skips: [String])]
    private let outputBlock: String
    private let head: TrainableConv2d

    /// Builds the model from a state_dict with SMP's key names (num_batches_tracked
    /// keys are accepted and ignored, and so are the unused encoder stages SMP
    /// saves when depth < 5); every missing, misshapen or unexpected key is reported.
    public init(encoder: Encoder, encoderDepth: Int = 5, decoderChannels: [Int] = [256, 128, 64, 32, 16],
                classes: Int = 29, weights: [String: Tensor]) throws {
        let source = "trainable UNet++(\(encoder.rawValue))"
        try SegmentationModel.check(encoder: encoder.encoderName, encoderDepth: encoderDepth,
                                    decoderChannels: decoderChannels, source: source)
        self.encoder = encoder
        self.encoderDepth = encoderDepth
        self.decoderChannels = decoderChannels
        self.classes = classes
        let builder = TrainableWeights(weights, source: source)
        encoderNetwork = encoder.build(depth: encoderDepth, weights: builder)
        let reference = try UnetPlusPlusDecoder(encoderChannels: encoderNetwork.outChannels, decoderChannels: decoderChannels,
                                                weights: StateDict([:], source: "decoder schedule", recording: true))
        schedule = reference.schedule
        outputBlock = schedule.last!.block
        // Blocks in SMP's ModuleDict order: x_{d}_{layer} for layer, then d; the last block at the end.
        let depth = decoderChannels.count - 1
        var blockOrder: [String] = []
        for layer in 0..<depth { for d in 0...layer { blockOrder.append("x_\(d)_\(layer)") } }
        blockOrder.append("x_0_\(depth)")
        var decoderBlocks: [String: (ConvBatchNorm, ConvBatchNorm)] = [:]
        for name in blockOrder {
            guard let (inChannels, outChannels) = reference.blockChannels(name) else {
                throw ModelError("\(source): decoder has no block \(name)")
            }
            let key = "decoder.blocks.\(name)"
            decoderBlocks[name] = (builder.convBN("\(key).conv1.0", "\(key).conv1.1", inChannels, outChannels, kernel: 3, padding: 1),
                                   builder.convBN("\(key).conv2.0", "\(key).conv2.1", outChannels, outChannels, kernel: 3, padding: 1))
        }
        self.decoderBlocks = decoderBlocks
        head = builder.conv("segmentation_head.0", decoderChannels.last!, classes, kernel: 3, padding: 1, bias: true)
        try builder.finish()
        parameters = builder.parameters
        batchNorms = builder.batchNorms
    }

    /// The model with deterministic weights (DeterministicFill by key), as
    /// `SegmentationModel.deterministic` and the fixture scripts build them.
    public static func deterministic(encoder: Encoder, encoderDepth: Int = 5, decoderChannels: [Int] = [256, 128, 64, 32, 16],
                                     classes: Int = 29) throws -> TrainableUnetPlusPlus {
        var tensors: [String: Tensor] = [:]
        for (key, shape) in SegmentationModel.parameterShapes(encoder: encoder.encoderName, encoderDepth: encoderDepth,
                                                              decoderChannels: decoderChannels, classes: classes) {
            tensors[key] = DeterministicFill.parameter(name: key, shape: shape)
        }
        return try TrainableUnetPlusPlus(encoder: encoder, encoderDepth: encoderDepth, decoderChannels: decoderChannels,
                                         classes: classes, weights: tensors)
    }

    /// The model initialised for training from scratch as PyTorch + SMP do (see
    /// `ScratchInitialization`: the backbone's own conv init, SMP's decoder and head
    /// init, BatchNorm 1/0 with running statistics 0/1), from a seeded generator:
    /// the same seed gives the same weights.
    public static func initialized(encoder: Encoder, encoderDepth: Int = 5, decoderChannels: [Int] = [256, 128, 64, 32, 16],
                                   classes: Int = 29, seed: UInt64) throws -> TrainableUnetPlusPlus {
        let shapes = SegmentationModel.parameterShapes(encoder: encoder.encoderName, encoderDepth: encoderDepth,
                                                       decoderChannels: decoderChannels, classes: classes)
        let tensors = ScratchInitialization.tensors(shapes: shapes, encoderConv: encoder.scratchInit, seed: seed)
        return try TrainableUnetPlusPlus(encoder: encoder, encoderDepth: encoderDepth, decoderChannels: decoderChannels,
                                         classes: classes, weights: tensors)
    }

    /// What input sides must be multiples of: 2^encoderDepth.
    public var inputMultiple: Int { 1 << encoderDepth }

    /// Logits for a normalised NCHW batch (sides multiples of 2^depth). With `training`,
    /// BatchNorm uses batch statistics and updates its running statistics; with a
    /// tape, everything needed for `Tape.backward` is recorded.
    public func forward(_ input: Tensor, training: Bool, tape: Tape?) throws -> Node {
        guard input.rank == 4, input.channels == 3 else { throw ModelError("model expects input [N, 3, H, W], got \(input.shape)") }
        guard input.height % inputMultiple == 0, input.width % inputMultiple == 0 else {
            throw ModelError("input \(input.height)x\(input.width) is not a multiple of \(inputMultiple) on both sides")
        }
        let features = encoderNetwork.features(Node(input, requiresGradient: false), training: training, tape: tape)
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
    /// state_dict `SegmentationModel` loads (num_batches_tracked is left out, as there;
    /// so are the encoder stages a depth < 5 never runs).
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
