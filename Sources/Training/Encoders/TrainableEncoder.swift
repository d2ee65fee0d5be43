import Models
import TensorEngine

/// A trainable encoder under the trainable UNet++: SMP's feature pyramid as
/// graph nodes. Its parameters and BatchNorms are registered, in state_dict
/// order, with the `TrainableWeights` it was built from, so the model owns one
/// list of each for the optimiser and for export.
protocol TrainableEncoder: AnyObject {
    /// Channels of each feature, input first (SMP's `encoder.out_channels`, cut to the depth).
    var outChannels: [Int] { get }
    /// The features after the input, at strides 2, 4, … 2^depth.
    func features(_ input: Node, training: Bool, tape: Tape?) -> [Node]
}

/// Builds trainable layers from a state_dict with SMP's key names, recording
/// every parameter and BatchNorm in the order it is created (the modules'
/// definition order, which is PyTorch's `named_parameters()` and state_dict
/// order). Missing, misshapen and unexpected keys are reported together by
/// `finish()`; `num_batches_tracked` keys are accepted and ignored.
final class TrainableWeights {
    private let source: StateDict
    private(set) var parameters: [Parameter] = []
    private(set) var batchNorms: [TrainableBatchNorm2d] = []

    init(_ weights: [String: Tensor], source: String) {
        self.source = StateDict(weights.filter { !$0.key.hasSuffix(".num_batches_tracked") }, source: source)
    }

    func parameter(_ key: String, _ shape: [Int]) -> Parameter {
        let p = Parameter(name: key, value: Tensor(shape: shape, values: source.take(key, shape: shape)))
        parameters.append(p)
        return p
    }

    func conv(_ key: String, _ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
              bias: Bool = false) -> TrainableConv2d {
        let weight = parameter("\(key).weight", [outChannels, inChannels, kernel, kernel])
        return TrainableConv2d(weight: weight, bias: bias ? parameter("\(key).bias", [outChannels]) : nil,
                               stride: stride, padding: padding)
    }

    func batchNorm(_ key: String, _ channels: Int) -> TrainableBatchNorm2d {
        let weight = parameter("\(key).weight", [channels])
        let bias = parameter("\(key).bias", [channels])
        let bn = TrainableBatchNorm2d(name: key, weight: weight, bias: bias,
                                      runningMean: Tensor(shape: [channels], values: source.take("\(key).running_mean", shape: [channels])),
                                      runningVar: Tensor(shape: [channels], values: source.take("\(key).running_var", shape: [channels])))
        batchNorms.append(bn)
        return bn
    }

    /// A bias-free conv followed by its BatchNorm (torchvision's conv/bn pairs, SMP's Conv2dReLU).
    func convBN(_ conv: String, _ norm: String, _ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0) -> ConvBatchNorm {
        let c = self.conv(conv, inChannels, outChannels, kernel: kernel, stride: stride, padding: padding)
        return ConvBatchNorm(conv: c, norm: batchNorm(norm, outChannels))
    }

    /// Keys under `prefix` that are accepted unread (stages a reduced-depth encoder never runs).
    func ignore(prefix: String) { source.ignore(prefix: prefix) }

    func finish() throws { try source.finish() }
}
