import TensorEngine

/// Weights by SMP/PyTorch key name, handed out to the layers that build
/// themselves from it. Every key a model takes is checked for shape, and at
/// the end every key not taken is reported: a file for another architecture
/// fails loudly, by name, instead of producing quiet garbage.
public final class StateDict {
    private var tensors: [String: Tensor]
    private var taken: Set<String> = []
    private var problems: [String] = []
    public let source: String
    /// Every (key, shape) asked for, in the model's order.
    public private(set) var requested: [(String, [Int])] = []
    private let recording: Bool

    /// With `recording`, a missing key is not a problem: the model is being
    /// built only to list the keys and shapes it takes.
    public init(_ tensors: [String: Tensor], source: String, recording: Bool = false) {
        self.tensors = tensors
        self.source = source
        self.recording = recording
    }

    /// The tensor under `key` with `shape`; records a problem and returns zeros otherwise,
    /// so one load reports every fault at once.
    public func take(_ key: String, shape: [Int]) -> [Float] {
        taken.insert(key)
        requested.append((key, shape))
        guard let t = tensors[key] else {
            if recording { return [Float](repeating: 0, count: shape.reduce(1, *)) }
            problems.append("missing key '\(key)' (expected shape \(shape))")
            return [Float](repeating: 0, count: shape.reduce(1, *))
        }
        guard t.shape == shape else {
            problems.append("key '\(key)' has shape \(t.shape), expected \(shape)")
            return [Float](repeating: 0, count: shape.reduce(1, *))
        }
        return t.array
    }

    public func has(_ key: String) -> Bool { tensors[key] != nil }

    /// Accepts, unread, every present key under `prefix` (e.g. "encoder.layer3."): SMP
    /// keeps the stages an encoder of reduced depth never runs in its state_dict.
    /// Nothing is requested, so `parameterShapes` and exports leave them out.
    public func ignore(prefix: String) {
        for key in tensors.keys where key.hasPrefix(prefix) { taken.insert(key) }
    }

    /// Throws one error listing every missing, misshapen and unexpected key.
    public func finish() throws {
        var all = problems
        let unexpected = tensors.keys.filter { !taken.contains($0) }.sorted()
        for key in unexpected.prefix(20) { all.append("unexpected key '\(key)'") }
        if unexpected.count > 20 { all.append("… and \(unexpected.count - 20) more unexpected keys") }
        guard all.isEmpty else {
            throw ModelError("\(source): weights do not match the model: " + all.prefix(30).joined(separator: "; "))
        }
        tensors = [:]
    }
}

extension Conv2D {
    /// conv (`<convKey>.weight`, optional bias) followed by BatchNorm (`<bnKey>.*`), folded for inference.
    static func load(_ weights: StateDict, conv convKey: String, batchNorm bnKey: String?, inChannels: Int, outChannels: Int,
                     kernel: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1, hasBias: Bool = false) -> Conv2D {
        let w = weights.take("\(convKey).weight", shape: [outChannels, inChannels, kernel, kernel])
        let b = hasBias ? weights.take("\(convKey).bias", shape: [outChannels]) : nil
        var conv = Conv2D(inChannels: inChannels, outChannels: outChannels, kernelSize: kernel, stride: stride,
                          padding: padding, dilation: dilation, weight: w, bias: b)
        if let bnKey {
            conv.foldBatchNorm(gamma: weights.take("\(bnKey).weight", shape: [outChannels]),
                               beta: weights.take("\(bnKey).bias", shape: [outChannels]),
                               mean: weights.take("\(bnKey).running_mean", shape: [outChannels]),
                               variance: weights.take("\(bnKey).running_var", shape: [outChannels]))
        }
        return conv
    }
}
