import TensorEngine

/// timm's HRNet-W18/32/48 as SMP 0.6 wraps it for `tu-hrnet_wNN`
/// (`features_only`, `feature_location="incre"`, keys `encoder.model.*`),
/// trainable; the same graph as `HRNetEncoder`. Features: the stem's first
/// conv+BN+ReLU (64 channels, stride 2), then each final-stage branch through
/// its `incre_modules` bottleneck (128, 256, 512, 1024 channels at strides 4 … 32).
final class TrainableHRNet: TrainableEncoder {
    /// timm's BasicBlock (two 3×3) or Bottleneck (1×1, 3×3, 1×1, expansion 4), stride 1;
    /// ReLU after the residual sum.
    struct ResidualBlock {
        let convs: [ConvBatchNorm]
        let downsample: ConvBatchNorm?

        init(_ weights: TrainableWeights, _ key: String, bottleneck: Bool, inChannels: Int, planes: Int) {
            let outChannels = bottleneck ? planes * 4 : planes
            if bottleneck {
                convs = [weights.convBN("\(key).conv1", "\(key).bn1", inChannels, planes, kernel: 1),
                         weights.convBN("\(key).conv2", "\(key).bn2", planes, planes, kernel: 3, padding: 1),
                         weights.convBN("\(key).conv3", "\(key).bn3", planes, outChannels, kernel: 1)]
            } else {
                convs = [weights.convBN("\(key).conv1", "\(key).bn1", inChannels, planes, kernel: 3, padding: 1),
                         weights.convBN("\(key).conv2", "\(key).bn2", planes, planes, kernel: 3, padding: 1)]
            }
            downsample = inChannels == outChannels ? nil
                : weights.convBN("\(key).downsample.0", "\(key).downsample.1", inChannels, outChannels, kernel: 1)
        }

        func callAsFunction(_ x: Node, training: Bool, tape: Tape?) -> Node {
            let identity = downsample.map { $0(x, relu: false, training: training, tape: tape) } ?? x
            var y = x
            for conv in convs.dropLast() { y = conv(y, relu: true, training: training, tape: tape) }
            y = convs.last!(y, relu: false, training: training, tape: tape)
            return TrainOps.relu(TrainOps.add(y, identity, tape: tape), tape: tape)
        }
    }

    /// How branch j reaches branch i in a fuse layer.
    enum FusePath {
        case identity
        /// 1×1 conv + BN at branch j's resolution, then nearest upsampling by `factor`.
        case up(ConvBatchNorm, factor: Int)
        /// Strided 3×3 conv + BN steps, ReLU after all but the last.
        case down([ConvBatchNorm])
    }

    /// One `HighResolutionModule`: residual branches, then each output branch is the
    /// ReLU of the sum over input branches (in branch order) of their paths.
    struct Module {
        let branches: [[ResidualBlock]]
        let fuse: [[FusePath]]
    }

    /// A transition entry: keep the branch, or 3×3 conv + BN + ReLU steps (stride 2
    /// when they make a new, lower branch from the last one).
    enum TransitionPath {
        case identity
        case convs([ConvBatchNorm], fromLast: Bool)
    }

    static let headChannels = [32, 64, 128, 256]

    let outChannels: [Int]
    private let conv1: ConvBatchNorm
    private let conv2: ConvBatchNorm
    private let layer1: [ResidualBlock]
    private let transitions: [[TransitionPath]]
    private let stages: [[Module]]
    private let incre: [ResidualBlock]

    /// `width`: 18, 32 or 48 (branch channels width · 2^i).
    init(width: Int, weights: TrainableWeights) {
        let p = "encoder.model"
        conv1 = weights.convBN("\(p).conv1", "\(p).bn1", 3, 64, kernel: 3, stride: 2, padding: 1)
        conv2 = weights.convBN("\(p).conv2", "\(p).bn2", 64, 64, kernel: 3, stride: 2, padding: 1)
        layer1 = (0..<4).map { ResidualBlock(weights, "\(p).layer1.\($0)", bottleneck: true, inChannels: $0 == 0 ? 64 : 256, planes: 64) }
        var previous = [256]
        var transitions: [[TransitionPath]] = []
        var stages: [[Module]] = []
        for (s, moduleCount) in [1, 4, 3].enumerated() {
            let branches = s + 2
            let channels = (0..<branches).map { width << $0 }
            let tkey = "\(p).transition\(s + 1)"
            var paths: [TransitionPath] = []
            for i in 0..<branches {
                if i < previous.count {
                    paths.append(previous[i] == channels[i] ? .identity
                        : .convs([weights.convBN("\(tkey).\(i).0", "\(tkey).\(i).1", previous[i], channels[i], kernel: 3, padding: 1)],
                                 fromLast: false))
                } else {
                    let steps = i + 1 - previous.count
                    let convs = (0..<steps).map { j in
                        weights.convBN("\(tkey).\(i).\(j).0", "\(tkey).\(i).\(j).1", previous.last!,
                                       j == steps - 1 ? channels[i] : previous.last!, kernel: 3, stride: 2, padding: 1)
                    }
                    paths.append(.convs(convs, fromLast: true))
                }
            }
            transitions.append(paths)
            var modules: [Module] = []
            for m in 0..<moduleCount {
                let mkey = "\(p).stage\(s + 2).\(m)"
                let branchBlocks = (0..<branches).map { b in
                    (0..<4).map { ResidualBlock(weights, "\(mkey).branches.\(b).\($0)", bottleneck: false,
                                                inChannels: channels[b], planes: channels[b]) }
                }
                let fuse = (0..<branches).map { i in
                    (0..<branches).map { j -> FusePath in
                        let fkey = "\(mkey).fuse_layers.\(i).\(j)"
                        if j > i {
                            return .up(weights.convBN("\(fkey).0", "\(fkey).1", channels[j], channels[i], kernel: 1), factor: 1 << (j - i))
                        } else if j == i {
                            return .identity
                        }
                        return .down((0..<(i - j)).map { k in
                            weights.convBN("\(fkey).\(k).0", "\(fkey).\(k).1", channels[j], k == i - j - 1 ? channels[i] : channels[j],
                                           kernel: 3, stride: 2, padding: 1)
                        })
                    }
                }
                modules.append(Module(branches: branchBlocks, fuse: fuse))
            }
            stages.append(modules)
            previous = channels
        }
        self.transitions = transitions
        self.stages = stages
        incre = (0..<4).map { ResidualBlock(weights, "\(p).incre_modules.\($0).0", bottleneck: true, inChannels: previous[$0],
                                            planes: Self.headChannels[$0]) }
        outChannels = [3, 64] + Self.headChannels.map { $0 * 4 }
    }

    private func run(_ module: Module, _ inputs: [Node], training: Bool, tape: Tape?) -> [Node] {
        let x = zip(module.branches, inputs).map { blocks, input in
            blocks.reduce(input) { y, block in block(y, training: training, tape: tape) }
        }
        if x.count == 1 { return x }
        return module.fuse.map { row in
            let terms = row.enumerated().map { j, path -> (Node, factor: Int) in
                switch path {
                case .identity:
                    return (x[j], 1)
                case .up(let conv, let factor):
                    return (conv(x[j], relu: false, training: training, tape: tape), factor)
                case .down(let convs):
                    var y = x[j]
                    for (k, conv) in convs.enumerated() { y = conv(y, relu: k < convs.count - 1, training: training, tape: tape) }
                    return (y, 1)
                }
            }
            return TrainOps.relu(EncoderOps.sumUpsampled(terms, tape: tape), tape: tape)
        }
    }

    func features(_ input: Node, training: Bool, tape: Tape?) -> [Node] {
        let stem1 = conv1(input, relu: true, training: training, tape: tape)
        var x = conv2(stem1, relu: true, training: training, tape: tape)
        for block in layer1 { x = block(x, training: training, tape: tape) }
        var branches = [x]
        for (s, modules) in stages.enumerated() {
            branches = transitions[s].enumerated().map { i, path in
                switch path {
                case .identity: return branches[i]
                case .convs(let convs, let fromLast):
                    return convs.reduce(fromLast ? branches.last! : branches[i]) { $1($0, relu: true, training: training, tape: tape) }
                }
            }
            for module in modules { branches = run(module, branches, training: training, tape: tape) }
        }
        return [stem1] + zip(incre, branches).map { $0($1, training: training, tape: tape) }
    }
}
