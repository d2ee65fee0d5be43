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
    public let classes: Int
    let encoder: any FeatureEncoder
    let decoder: UnetPlusPlusDecoder
    let head: Conv2D

    public init(encoder encoderName: EncoderName, decoderChannels: [Int] = [256, 128, 64, 32, 16], classes: Int = 29,
                weights: StateDict) throws {
        self.encoderName = encoderName
        self.classes = classes
        switch encoderName {
        case .resnet18: encoder = ResNetEncoder(.resnet18, weights: weights)
        case .resnet34: encoder = ResNetEncoder(.resnet34, weights: weights)
        case .resnet50: encoder = ResNetEncoder(.resnet50, weights: weights)
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

    /// Input sides must be multiples of 32, as SMP requires for a depth-5 encoder.
    public static let sizeMultiple = 32

    public func forward(_ input: Tensor) throws -> Tensor {
        guard input.rank == 4, input.channels == encoder.outChannels[0] else {
            throw ModelError("model expects input [N, \(encoder.outChannels[0]), H, W], got \(input.shape)")
        }
        guard input.height % Self.sizeMultiple == 0, input.width % Self.sizeMultiple == 0 else {
            throw ModelError("input \(input.height)x\(input.width) is not a multiple of \(Self.sizeMultiple) on both sides")
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
    public static func parameterShapes(encoder: EncoderName, decoderChannels: [Int] = [256, 128, 64, 32, 16],
                                       classes: Int = 29) -> [(String, [Int])] {
        let recorder = StateDict([:], source: "shape recorder", recording: true)
        _ = try? SegmentationModel(encoder: encoder, decoderChannels: decoderChannels, classes: classes, weights: recorder)
        return recorder.requested
    }

    /// A model with deterministic weights (see `DeterministicFill`), as the parity
    /// fixtures and the demo build them.
    public static func deterministic(encoder: EncoderName, decoderChannels: [Int] = [256, 128, 64, 32, 16],
                                     classes: Int = 29) throws -> (SegmentationModel, [String: Tensor]) {
        var tensors: [String: Tensor] = [:]
        for (key, shape) in parameterShapes(encoder: encoder, decoderChannels: decoderChannels, classes: classes) {
            tensors[key] = DeterministicFill.parameter(name: key, shape: shape)
        }
        let model = try SegmentationModel(encoder: encoder, decoderChannels: decoderChannels, classes: classes,
                                          weights: StateDict(tensors, source: "deterministic \(encoder.rawValue)"))
        return (model, tensors)
    }
}
