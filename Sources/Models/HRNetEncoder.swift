import TensorEngine

/// timm's HRNet as SMP 0.6's `TimmUniversalEncoder` wraps it for `tu-hrnet_wNN`:
/// `timm.create_model(name, features_only=True)`, i.e. `HighResolutionNetFeatures`
/// with `feature_location="incre"` (keys `encoder.model.*`). Features: the
/// input; the stem's first conv+BN+ReLU (64 channels, stride 2); then each of
/// the four final-stage branches through its `incre_modules` bottleneck
/// (128, 256, 512, 1024 channels at strides 4 … 32). Every BatchNorm follows a
/// conv and is folded into it.
public struct HRNetEncoder: FeatureEncoder {
    public enum Variant: String, Sendable, CaseIterable {
        case w18, w32, w48

        var width: Int {
            switch self {
            case .w18: return 18
            case .w32: return 32
            case .w48: return 48
            }
        }
    }

    /// timm's BasicBlock (2 convs) or Bottleneck (3 convs, expansion 4); ReLU after
    /// the residual sum.
    struct ResidualBlock: Sendable {
        let convs: [Conv2D]
        let downsample: Conv2D?

        static func load(_ weights: StateDict, _ key: String, bottleneck: Bool, inChannels: Int, planes: Int) -> ResidualBlock {
            var convs: [Conv2D] = []
            let outChannels = bottleneck ? planes * 4 : planes
            if bottleneck {
                convs.append(.load(weights, conv: "\(key).conv1", batchNorm: "\(key).bn1", inChannels: inChannels, outChannels: planes, kernel: 1))
                convs.append(.load(weights, conv: "\(key).conv2", batchNorm: "\(key).bn2", inChannels: planes, outChannels: planes, kernel: 3, padding: 1))
                convs.append(.load(weights, conv: "\(key).conv3", batchNorm: "\(key).bn3", inChannels: planes, outChannels: outChannels, kernel: 1))
            } else {
                convs.append(.load(weights, conv: "\(key).conv1", batchNorm: "\(key).bn1", inChannels: inChannels, outChannels: planes, kernel: 3, padding: 1))
                convs.append(.load(weights, conv: "\(key).conv2", batchNorm: "\(key).bn2", inChannels: planes, outChannels: planes, kernel: 3, padding: 1))
            }
            let downsample: Conv2D? = inChannels == outChannels ? nil :
                .load(weights, conv: "\(key).downsample.0", batchNorm: "\(key).downsample.1", inChannels: inChannels,
                      outChannels: outChannels, kernel: 1)
            return ResidualBlock(convs: convs, downsample: downsample)
        }

        func callAsFunction(_ x: Tensor) -> Tensor {
            let identity = downsample.map { $0(x) } ?? x
            var y = x
            for conv in convs.dropLast() { y = conv(y, epilogue: .relu) }
            return convs.last!(y, epilogue: .addThenReLU(identity))
        }

        func macs(height: Int, width: Int) -> Int {
            convs.reduce(0) { $0 + $1.macs(height: height, width: width) } + (downsample?.macs(height: height, width: width) ?? 0)
        }
    }

    /// How branch j reaches branch i inside a fuse layer.
    enum FusePath: Sendable {
        case identity
        /// 1×1 conv + BN at branch j's resolution, then nearest upsampling by `factor`.
        case up(Conv2D, factor: Int)
        /// Strided 3×3 conv + BN steps, ReLU after all but the last.
        case down([Conv2D])
    }

    /// One `HighResolutionModule`: residual branches, then every output branch
    /// is the ReLU of the sum over input branches (in branch order) of their paths.
    struct Module: Sendable {
        let branches: [[ResidualBlock]]
        let fuse: [[FusePath]]
    }

    /// A transition entry: keep the branch, a 3×3 conv (new channel count), or a
    /// chain of strided 3×3 convs from the last branch (a new, lower branch).
    enum TransitionPath: Sendable {
        case identity
        case convs([Conv2D], fromLast: Bool)
    }

    public let variant: Variant
    public let outChannels: [Int]
    let conv1: Conv2D
    let conv2: Conv2D
    let layer1: [ResidualBlock]
    let transitions: [[TransitionPath]]
    let stages: [[Module]]
    let incre: [ResidualBlock]

    static let headChannels = [32, 64, 128, 256]

    public init(_ variant: Variant, weights: StateDict, inChannels: Int = 3, prefix: String = "encoder.model") {
        self.variant = variant
        let p = prefix
        conv1 = .load(weights, conv: "\(p).conv1", batchNorm: "\(p).bn1", inChannels: inChannels, outChannels: 64,
                      kernel: 3, stride: 2, padding: 1)
        conv2 = .load(weights, conv: "\(p).conv2", batchNorm: "\(p).bn2", inChannels: 64, outChannels: 64,
                      kernel: 3, stride: 2, padding: 1)
        var layer1: [ResidualBlock] = []
        var c = 64
        for b in 0..<4 {
            layer1.append(.load(weights, "\(p).layer1.\(b)", bottleneck: true, inChannels: c, planes: 64))
            c = 256
        }
        self.layer1 = layer1

        let w = variant.width
        let stageModules = [1, 4, 3]
        var previous = [256]
        var transitions: [[TransitionPath]] = []
        var stages: [[Module]] = []
        for (s, moduleCount) in stageModules.enumerated() {
            let branches = s + 2
            let channels = (0..<branches).map { w << $0 }
            // transition{s+1}
            let tkey = "\(p).transition\(s + 1)"
            var paths: [TransitionPath] = []
            for i in 0..<branches {
                if i < previous.count {
                    if previous[i] == channels[i] {
                        paths.append(.identity)
                    } else {
                        paths.append(.convs([.load(weights, conv: "\(tkey).\(i).0", batchNorm: "\(tkey).\(i).1",
                                                   inChannels: previous[i], outChannels: channels[i], kernel: 3, padding: 1)],
                                            fromLast: false))
                    }
                } else {
                    var convs: [Conv2D] = []
                    for j in 0..<(i + 1 - previous.count) {
                        let inC = previous.last!
                        let outC = j == i - previous.count ? channels[i] : inC
                        convs.append(.load(weights, conv: "\(tkey).\(i).\(j).0", batchNorm: "\(tkey).\(i).\(j).1",
                                           inChannels: inC, outChannels: outC, kernel: 3, stride: 2, padding: 1))
                    }
                    paths.append(.convs(convs, fromLast: true))
                }
            }
            transitions.append(paths)
            // stage{s+2}: modules of BasicBlock branches, 4 blocks each, with fuse layers.
            var modules: [Module] = []
            for m in 0..<moduleCount {
                let mkey = "\(p).stage\(s + 2).\(m)"
                var branchBlocks: [[ResidualBlock]] = []
                for b in 0..<branches {
                    branchBlocks.append((0..<4).map {
                        .load(weights, "\(mkey).branches.\(b).\($0)", bottleneck: false, inChannels: channels[b], planes: channels[b])
                    })
                }
                var fuse: [[FusePath]] = []
                for i in 0..<branches {
                    var row: [FusePath] = []
                    for j in 0..<branches {
                        let fkey = "\(mkey).fuse_layers.\(i).\(j)"
                        if j > i {
                            row.append(.up(.load(weights, conv: "\(fkey).0", batchNorm: "\(fkey).1", inChannels: channels[j],
                                                 outChannels: channels[i], kernel: 1), factor: 1 << (j - i)))
                        } else if j == i {
                            row.append(.identity)
                        } else {
                            var convs: [Conv2D] = []
                            for k in 0..<(i - j) {
                                let outC = k == i - j - 1 ? channels[i] : channels[j]
                                convs.append(.load(weights, conv: "\(fkey).\(k).0", batchNorm: "\(fkey).\(k).1",
                                                   inChannels: channels[j], outChannels: outC, kernel: 3, stride: 2, padding: 1))
                            }
                            row.append(.down(convs))
                        }
                    }
                    fuse.append(row)
                }
                modules.append(Module(branches: branchBlocks, fuse: fuse))
            }
            stages.append(modules)
            previous = channels
        }
        self.transitions = transitions
        self.stages = stages
        incre = (0..<4).map { i in
            .load(weights, "\(p).incre_modules.\(i).0", bottleneck: true, inChannels: previous[i], planes: Self.headChannels[i])
        }
        outChannels = [inChannels, 64] + Self.headChannels.map { $0 * 4 }
    }

    func run(_ module: Module, _ inputs: [Tensor]) -> [Tensor] {
        let x = zip(module.branches, inputs).map { blocks, input in blocks.reduce(input) { $1($0) } }
        if x.count == 1 { return x }
        return module.fuse.enumerated().map { i, row in
            var sum: Tensor? = nil
            for (j, path) in row.enumerated() {
                switch path {
                case .identity:
                    if let s = sum { Ops.addInPlace(x[j], into: s) } else { sum = x[j].copy() }
                case .up(let conv, let factor):
                    let low = conv(x[j])
                    if let s = sum {
                        Ops.addUpsampledNearest(low, into: s, factor: factor)
                    } else {
                        let s = Tensor(zeros: [low.batch, low.channels, low.height * factor, low.width * factor])
                        Ops.addUpsampledNearest(low, into: s, factor: factor)
                        sum = s
                    }
                case .down(let convs):
                    var y = x[j]
                    for conv in convs.dropLast() { y = conv(y, epilogue: .relu) }
                    y = convs.last!(y)
                    if let s = sum { Ops.addInPlace(y, into: s) } else { sum = y }
                }
            }
            Ops.reluInPlace(sum!)
            return sum!
        }
    }

    public func features(_ input: Tensor) -> [Tensor] {
        let stem1 = conv1(input, epilogue: .relu)
        var x = conv2(stem1, epilogue: .relu)
        for block in layer1 { x = block(x) }
        var branches = [x]
        for (s, modules) in stages.enumerated() {
            branches = transitions[s].enumerated().map { i, path in
                switch path {
                case .identity: return branches[i]
                case .convs(let convs, let fromLast):
                    return convs.reduce(fromLast ? branches.last! : branches[i]) { $1($0, epilogue: .relu) }
                }
            }
            for module in modules { branches = run(module, branches) }
        }
        return [input, stem1] + zip(incre, branches).map { $0($1) }
    }

    public func macs(height: Int, width: Int) -> Int {
        var total = conv1.macs(height: height, width: width)
        let (h1, w1) = conv1.outputSize(height: height, width: width)
        total += conv2.macs(height: h1, width: w1)
        let (h2, w2) = conv2.outputSize(height: h1, width: w1)
        let sizes = (0..<4).map { (h2 >> $0, w2 >> $0) }
        total += layer1.reduce(0) { $0 + $1.macs(height: h2, width: w2) }
        for (s, modules) in stages.enumerated() {
            for (i, path) in transitions[s].enumerated() {
                guard case .convs(let convs, let fromLast) = path else { continue }
                var (h, w) = fromLast ? sizes[s] : sizes[i]
                for conv in convs {
                    total += conv.macs(height: h, width: w)
                    (h, w) = conv.outputSize(height: h, width: w)
                }
            }
            for module in modules {
                for (b, blocks) in module.branches.enumerated() {
                    total += blocks.reduce(0) { $0 + $1.macs(height: sizes[b].0, width: sizes[b].1) }
                }
                for row in module.fuse {
                    for (j, path) in row.enumerated() {
                        switch path {
                        case .identity: break
                        case .up(let conv, _): total += conv.macs(height: sizes[j].0, width: sizes[j].1)
                        case .down(let convs):
                            var (h, w) = sizes[j]
                            for conv in convs {
                                total += conv.macs(height: h, width: w)
                                (h, w) = conv.outputSize(height: h, width: w)
                            }
                        }
                    }
                }
            }
        }
        for (i, block) in incre.enumerated() { total += block.macs(height: sizes[i].0, width: sizes[i].1) }
        return total
    }
}
