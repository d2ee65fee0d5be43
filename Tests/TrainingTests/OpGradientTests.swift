import Foundation
import Testing
import TensorEngine
@testable import Training

/// Backward passes of single ops against central finite differences of
/// L = Σ r·f(x) (r fixed random weights), in Double from Float evaluations.
@Suite struct OpGradientTests {
    static func tensor(_ name: String, _ shape: [Int], scale: Float = 1) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor(shape: shape, values: DeterministicFill.uniform(name: name, count: count).map { (2 * $0 - 1) * scale })
    }

    /// Worst |analytic − numeric| / max |numeric| over every entry of `x` (and of
    /// `extra` tensors, e.g. parameters), for the scalar loss Σ r·f.
    static func check(_ x: Tensor, extra: [(Tensor, () -> Tensor)] = [], step: Float = 1e-2,
                      _ f: (Node, Tape?) -> Node) -> Float {
        let probe = f(Node(x), nil).value
        let r = tensor("opgrad.r", probe.shape)
        func loss() -> Double {
            let y = f(Node(x), nil).value
            var s: Double = 0
            for i in 0..<y.count { s += Double(y.storage[i]) * Double(r.storage[i]) }
            return s
        }
        let tape = Tape()
        let input = Node(x)
        let y = f(input, tape)
        tape.backward(from: y, seed: r)
        var pairs: [(Tensor, Tensor)] = [(x, input.grad ?? Tensor(zeros: x.shape))]
        for (value, grad) in extra { pairs.append((value, grad())) }
        var worst: Double = 0, scale: Double = 0
        for (value, analytic) in pairs {
            for i in 0..<value.count {
                let saved = value.storage[i]
                value.storage[i] = saved + step
                let up = loss()
                value.storage[i] = saved - step
                let down = loss()
                value.storage[i] = saved
                let numeric = (up - down) / (2 * Double(step))
                worst = max(worst, abs(Double(analytic.storage[i]) - numeric))
                scale = max(scale, abs(numeric))
            }
        }
        return Float(worst / scale)
    }

    @Test func convolutionStride2WithBias() {
        let weight = Parameter(name: "w", value: Self.tensor("opgrad.w", [4, 3, 3, 3], scale: 0.5))
        let bias = Parameter(name: "b", value: Self.tensor("opgrad.b", [4], scale: 0.1))
        let conv = TrainableConv2d(weight: weight, bias: bias, stride: 2, padding: 1)
        conv.tileFloats = 27 * 3 * 2  // two output rows per tile, the last tile one row
        let x = Self.tensor("opgrad.x", [2, 3, 9, 6])
        let ratio = Self.check(x, extra: [(weight.value, { weight.grad }), (bias.value, { bias.grad })]) { node, tape in
            if tape != nil { weight.zeroGrad(); bias.zeroGrad() }
            return conv.forward(node, tape: tape)
        }
        #expect(ratio < 1e-3, "conv gradient off by \(ratio) of max")
    }

    /// Row tiles change only BLAS blocking and summation order: outputs and gradients within rounding.
    @Test func convolutionTilesAgreeWithOneTile() {
        let weight = Parameter(name: "w", value: Self.tensor("opgrad.tw", [5, 4, 3, 3], scale: 0.3))
        let x = Self.tensor("opgrad.tx", [2, 4, 11, 9])
        let seed = Self.tensor("opgrad.tseed", [2, 5, 11, 9])
        func run(tileFloats: Int) -> (Tensor, Tensor, Tensor) {
            let conv = TrainableConv2d(weight: weight, bias: nil, stride: 1, padding: 1)
            conv.tileFloats = tileFloats
            weight.zeroGrad()
            let tape = Tape(), input = Node(x)
            let y = conv.forward(input, tape: tape)
            tape.backward(from: y, seed: seed)
            return (y.value, input.grad!, weight.grad.copy())
        }
        let (y1, dx1, dw1) = run(tileFloats: 1 << 20)
        // An input that needs no gradient: dX is skipped, dW is the same.
        let conv = TrainableConv2d(weight: weight, bias: nil, stride: 1, padding: 1)
        weight.zeroGrad()
        let tape = Tape(), constant = Node(x, requiresGradient: false)
        tape.backward(from: conv.forward(constant, tape: tape), seed: seed)
        #expect(constant.grad == nil)
        #expect(weight.grad.array == dw1.array)
        let (y3, dx3, dw3) = run(tileFloats: 36 * 9 * 3)  // 3 rows per tile: 4 tiles
        for (a, b) in [(y1, y3), (dx1, dx3), (dw1, dw3)] {
            var worst: Float = 0
            for i in 0..<a.count { worst = max(worst, abs(a.storage[i] - b.storage[i])) }
            #expect(worst <= 1e-5 * a.maxAbs(), "tiled result \(a.shape) differs by \(worst)")
        }
    }

    /// Winograd F(2×2, 3×3) against im2col on odd sizes (partial tiles on the right
    /// and bottom; width 19 gives both the 8-tile vector loops and their tails), with several chunks spanning images and output-channel splits:
    /// outputs, dX (stored, then accumulated: the input feeds two convs), dW and the
    /// bias gradient agree within Float32 rounding of the transforms.
    @Test(arguments: [(nil, nil, 19), (2, 1, 19), (5, 3, 19), (nil, nil, 16), (3, 2, 8)] as [(Int?, Int?, Int)])
    func winogradAgreesWithIm2col(chunkRows: Int?, splits: Int?, width: Int) {
        let weight = Parameter(name: "w", value: Self.tensor("opgrad.ww", [20, 12, 3, 3], scale: 0.3))
        let bias = Parameter(name: "b", value: Self.tensor("opgrad.wb", [20], scale: 0.1))
        let x = Self.tensor("opgrad.wx", [3, 12, 11, width])
        let seed = Self.tensor("opgrad.wseed", [3, 20, 11, width])
        func run(_ algorithm: TrainableConv2d.Algorithm) -> [Tensor] {
            let conv = TrainableConv2d(weight: weight, bias: bias, stride: 1, padding: 1)
            conv.algorithm = algorithm
            conv.winogradTuning = .init(chunkRows: chunkRows, splits: splits)
            weight.zeroGrad()
            bias.zeroGrad()
            let tape = Tape(), input = Node(x)
            let y = TrainOps.add(conv.forward(input, tape: tape), conv.forward(input, tape: tape), tape: tape)
            tape.backward(from: y, seed: seed)
            return [y.value, input.grad!, weight.grad.copy(), bias.grad.copy()]
        }
        let reference = run(.im2col), winograd = run(.winograd)
        for (name, (a, b)) in zip(["y", "dx", "dw", "db"], zip(reference, winograd)) {
            var worst: Float = 0
            for i in 0..<a.count { worst = max(worst, abs(a.storage[i] - b.storage[i])) }
            let scale = a.maxAbs()
            #expect(scale > 0.1, "\(name) is not trivially small")
            #expect(worst <= 1e-5 * scale, "winograd \(name) differs by \(worst) of max \(scale)")
        }
    }

    @Test func winogradConvolutionGradient() {
        let weight = Parameter(name: "w", value: Self.tensor("opgrad.wgw", [8, 8, 3, 3], scale: 0.3))
        let bias = Parameter(name: "b", value: Self.tensor("opgrad.wgb", [8], scale: 0.1))
        let conv = TrainableConv2d(weight: weight, bias: bias, stride: 1, padding: 1)
        conv.algorithm = .winograd
        conv.winogradTuning = .init(chunkRows: 3, splits: 2)
        let x = Self.tensor("opgrad.wgx", [2, 8, 7, 6])
        let ratio = Self.check(x, extra: [(weight.value, { weight.grad }), (bias.value, { bias.grad })]) { node, tape in
            if tape != nil { weight.zeroGrad(); bias.zeroGrad() }
            return conv.forward(node, tape: tape)
        }
        #expect(ratio < 1e-3, "winograd conv gradient off by \(ratio) of max")
    }

    /// The automatic choice: Winograd only for 3×3 stride-1 padding-1 convs with enough tiles in the batch.
    @Test func winogradChosenForLargeThreeByThree() {
        let w3 = Parameter(name: "w", value: Tensor(zeros: [16, 16, 3, 3]))
        let conv = TrainableConv2d(weight: w3, bias: nil, stride: 1, padding: 1)
        #expect(conv.usesWinograd(Tensor(shape: [4, 16, 32, 32])))
        #expect(conv.usesWinograd(Tensor(shape: [4, 16, 16, 16])))
        #expect(!conv.usesWinograd(Tensor(shape: [1, 16, 8, 8])))
        #expect(!TrainableConv2d(weight: w3, bias: nil, stride: 2, padding: 1).usesWinograd(Tensor(shape: [4, 16, 64, 64])))
    }

    @Test func convolution7x7Stride2Padding3() {
        let weight = Parameter(name: "w", value: Self.tensor("opgrad.w7", [2, 2, 7, 7], scale: 0.2))
        let conv = TrainableConv2d(weight: weight, bias: nil, stride: 2, padding: 3)
        conv.tileFloats = 98 * 4  // one output row per tile
        let x = Self.tensor("opgrad.x7", [1, 2, 9, 8])
        let ratio = Self.check(x, extra: [(weight.value, { weight.grad })]) { node, tape in
            if tape != nil { weight.zeroGrad() }
            return conv.forward(node, tape: tape)
        }
        #expect(ratio < 1e-3, "7x7 conv gradient off by \(ratio) of max")
    }

    @Test func batchNormTrainingAndEval() {
        for training in [true, false] {
            let bn = TrainableBatchNorm2d(name: "bn", weight: Parameter(name: "g", value: Self.tensor("opgrad.g", [3], scale: 1)),
                                          bias: Parameter(name: "b", value: Self.tensor("opgrad.beta", [3])),
                                          runningMean: Self.tensor("opgrad.rm", [3], scale: 0.1),
                                          runningVar: Tensor(shape: [3], values: [0.5, 1, 1.5]))
            let x = Self.tensor("opgrad.bnx", [2, 3, 4, 5])
            let ratio = Self.check(x, extra: [(bn.weight.value, { bn.weight.grad }), (bn.bias.value, { bn.bias.grad })],
                                   step: 1e-2) { node, tape in
                if tape != nil { bn.weight.zeroGrad(); bn.bias.zeroGrad() }
                return bn.forward(node, training: training, tape: tape)
            }
            #expect(ratio < 2e-3, "batch norm (training \(training)) gradient off by \(ratio) of max")
        }
    }

    @Test func sigmoidUpsampleConcatAdd() {
        let skip = Self.tensor("opgrad.skip", [2, 2, 6, 4])
        let skipNode = Node(skip)
        let ratio = Self.check(Self.tensor("opgrad.up", [2, 3, 3, 2])) { node, tape in
            let joined = TrainOps.upsampleConcat(node, [tape == nil ? Node(skip) : skipNode], tape: tape)
            let s = TrainOps.sigmoid(joined, tape: tape)
            return TrainOps.add(s, joined, tape: tape)
        }
        #expect(ratio < 1e-3, "sigmoid / upsample / concat / add gradient off by \(ratio) of max")
        #expect(skipNode.grad != nil, "the skip received a gradient")
    }

    @Test func averagePoolWithPadding() {
        let ratio = Self.check(Self.tensor("opgrad.avg", [2, 3, 7, 6])) { node, tape in
            TrainOps.avgPool2d(node, kernel: 3, stride: 2, padding: 1, tape: tape)
        }
        #expect(ratio < 1e-3, "average pool gradient off by \(ratio) of max")
    }

    @Test(arguments: [(13, 9), (4, 3), (7, 6)])
    func bilinearResize(height: Int, width: Int) {
        let ratio = Self.check(Self.tensor("opgrad.bilinear", [1, 2, 7, 6])) { node, tape in
            TrainOps.resizeBilinear(node, height: height, width: width, tape: tape)
        }
        #expect(ratio < 1e-3, "bilinear \(height)x\(width) gradient off by \(ratio) of max")
    }

    @Test func maxPoolAndReLU() {
        // Values spaced ≥ 0.05 apart and away from 0, so ±step never changes a maximum or a sign.
        let count = 2 * 2 * 7 * 6
        var values = (0..<count).map { Float($0 - count / 2) * 0.05 + 0.025 }
        let order = DeterministicFill.uniform(name: "opgrad.perm", count: count)
        values = zip(order, values).sorted { $0.0 < $1.0 }.map(\.1)
        let x = Tensor(shape: [2, 2, 7, 6], values: values)
        let ratio = Self.check(x, step: 1e-2) { node, tape in
            TrainOps.relu(TrainOps.maxPool2d(node, kernel: 3, stride: 2, padding: 1, tape: tape), tape: tape)
        }
        #expect(ratio < 1e-3, "max pool / ReLU gradient off by \(ratio) of max")
    }
}
