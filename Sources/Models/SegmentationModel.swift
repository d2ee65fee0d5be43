import TensorEngine

/// Encoder names accepted by `--encoder`.
public enum EncoderName: String, Sendable, CaseIterable, Codable {
    case resnet18, resnet34, resnet50
    case densenet121, densenet169, densenet201
    case hrnetW18 = "tu-hrnet_w18", hrnetW32 = "tu-hrnet_w32", hrnetW48 = "tu-hrnet_w48"
}

/// A UNet++ network ready for inference: encoder, decoder and head with every
/// BatchNorm folded. Input NCHW, already normalised; output logits NCHW at the
/// input's resolution.
public struct SegmentationModel: Sendable {
    public let encoderName: EncoderName
    /// SMP's `encoder_depth` (3…5): the encoder downsamples this many times and
    /// the decoder has as many blocks on its main path (one decoder channel each).
    public let encoderDepth: Int
    public let classes: Int
    let encoder: any FeatureEncoder
    let decoder: UnetPlusPlusDecoder
    let head: Conv2D

    /// Depths SMP's UnetPlusPlus accepts.
    public static let encoderDepths = 3...5

    public init(encoder encoderName: EncoderName, encoderDepth: Int = 5, decoderChannels: [Int] = [256, 128, 64, 32, 16],
                classes: Int = 29, weights: StateDict) throws {
        try Self.check(encoder: encoderName, encoderDepth: encoderDepth, decoderChannels: decoderChannels, source: weights.source)
        self.encoderName = encoderName
        self.encoderDepth = encoderDepth
        self.classes = classes
        switch encoderName {
        case .resnet18: encoder = ResNetEncoder(.resnet18, weights: weights, depth: encoderDepth)
        case .resnet34: encoder = ResNetEncoder(.resnet34, weights: weights, depth: encoderDepth)
        case .resnet50: encoder = ResNetEncoder(.resnet50, weights: weights, depth: encoderDepth)
        case .densenet121: encoder = DenseNetEncoder(.densenet121, weights: weights)
        case .densenet169: encoder = DenseNetEncoder(.densenet169, weights: weights)
        case .densenet201: encoder = DenseNetEncoder(.densenet201, weights: weights)
        case .hrnetW18: encoder = HRNetEncoder(.w18, weights: weights)
        case .hrnetW32: encoder = HRNetEncoder(.w32, weights: weights)
        case .hrnetW48: encoder = HRNetEncoder(.w48, weights: weights)
        }
        decoder = try UnetPlusPlusDecoder(encoderChannels: encoder.outChannels, decoderChannels: decoderChannels, weights: weights)
        head = .load(weights, conv: "segmentation_head.0", batchNorm: nil, inChannels: decoderChannels.last!,
                     outChannels: classes, kernel: 3, padding: 1, hasBias: true)
        try weights.finish()
    }

    /// The configuration problems SMP itself refuses, as one line naming `source`.
    public static func check(encoder: EncoderName, encoderDepth: Int, decoderChannels: [Int], source: String) throws {
        guard encoderDepths.contains(encoderDepth) else {
            throw ModelError("\(source): encoder depth \(encoderDepth) is not supported (UNet++ takes 3, 4 or 5)")
        }
        guard encoderDepth == 5 || [.resnet18, .resnet34, .resnet50].contains(encoder) else {
            throw ModelError("\(source): encoder depth \(encoderDepth) is supported for resnet encoders only, not \(encoder.rawValue)")
        }
        guard decoderChannels.count == encoderDepth, decoderChannels.allSatisfy({ $0 > 0 }) else {
            throw ModelError("\(source): encoder depth \(encoderDepth) needs \(encoderDepth) positive decoder channels, got \(decoderChannels)")
        }
    }

    /// Input sides must be multiples of 32 for every supported depth (SMP needs
    /// 2^depth; see `inputMultiple` for this model's own).
    public static let sizeMultiple = 32

    /// What this model's input sides must be multiples of: 2^encoderDepth, as SMP checks.
    public var inputMultiple: Int { 1 << encoderDepth }

    public func forward(_ input: Tensor) throws -> Tensor {
        guard input.rank == 4, input.channels == encoder.outChannels[0] else {
            throw ModelError("model expects input [N, \(encoder.outChannels[0]), H, W], got \(input.shape)")
        }
        guard input.height % inputMultiple == 0, input.width % inputMultiple == 0 else {
            throw ModelError("input \(input.height)x\(input.width) is not a multiple of \(inputMultiple) on both sides")
        }
        let features = encoder.features(input)
        let decoded = decoder(features)
        return head(decoded)
    }

    /// Multiply-accumulates of one forward pass at this input size.
    public func macs(height: Int, width: Int) -> Int {
        var shapes: [(channels: Int, height: Int, width: Int)] = [(encoder.outChannels[0], height, width)]
        for (i, c) in encoder.outChannels.dropFirst().enumerated() {
            shapes.append((c, height >> (i + 1), width >> (i + 1)))
        }
        return encoder.macs(height: height, width: width) + decoder.macs(encoderShapes: shapes)
            + head.macs(height: height, width: width)
    }

    /// Every state_dict key (and shape) an SMP UnetPlusPlus of this configuration holds,
    /// without num_batches_tracked; used to build deterministic test weights.
    /// With depth < 5 the unused encoder stages are left out (SMP would save them;
    /// `SegmentationModel` loads either).
    public static func parameterShapes(encoder: EncoderName, encoderDepth: Int = 5,
                                       decoderChannels: [Int] = [256, 128, 64, 32, 16],
                                       classes: Int = 29) -> [(String, [Int])] {
        let recorder = StateDict([:], source: "shape recorder", recording: true)
        _ = try? SegmentationModel(encoder: encoder, encoderDepth: encoderDepth, decoderChannels: decoderChannels,
                                   classes: classes, weights: recorder)
        return recorder.requested
    }

    /// A model with deterministic weights (see `DeterministicFill`), as the parity
    /// fixtures and the demo build them.
    public static func deterministic(encoder: EncoderName, encoderDepth: Int = 5,
                                     decoderChannels: [Int] = [256, 128, 64, 32, 16],
                                     classes: Int = 29) throws -> (SegmentationModel, [String: Tensor]) {
        var tensors: [String: Tensor] = [:]
        for (key, shape) in parameterShapes(encoder: encoder, encoderDepth: encoderDepth, decoderChannels: decoderChannels,
                                            classes: classes) {
            tensors[key] = DeterministicFill.parameter(name: key, shape: shape)
        }
        let model = try SegmentationModel(encoder: encoder, encoderDepth: encoderDepth, decoderChannels: decoderChannels,
                                          classes: classes,
                                          weights: StateDict(tensors, source: "deterministic \(encoder.rawValue)"))
        return (model, tensors)
    }
}
