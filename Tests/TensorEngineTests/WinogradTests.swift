import Testing
@testable import TensorEngine

/// Winograd F(2×2, 3×3) against the im2col path (itself checked against PyTorch),
/// on odd sizes (partial edge tiles), every epilogue, and a BatchNorm fold made
/// after the transformed weights were first used.
@Suite struct WinogradTests {
    func conv(_ cin: Int, _ cout: Int, _ name: String) -> Conv2D {
        Conv2D(inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1,
               weight: DeterministicFill.parameter(name: name + ".weight", shape: [cout, cin, 3, 3]).array,
               bias: DeterministicFill.parameter(name: name + ".bias", shape: [cout]).array)
    }

    func relativeDifference(_ a: Tensor, _ b: Tensor) -> Float {
        maxDifference(a, b) / max(b.maxAbs(), 1e-12)
    }

    @Test(arguments: [(17, 19, 13, 11), (16, 16, 1, 1), (32, 24, 8, 8), (20, 16, 2, 7)])
    func matchesIm2col(cin: Int, cout: Int, height: Int, width: Int) {
        let c = conv(cin, cout, "wino.\(cin).\(cout)")
        #expect(c.usesWinograd)
        let input = Tensor(shape: [2, cin, height, width],
                           values: DeterministicFill.uniform(name: "wino.input", count: 2 * cin * height * width).map { $0 * 2 - 1 })
        let residual = Tensor(shape: [2, cout, height, width],
                              values: DeterministicFill.uniform(name: "wino.res", count: 2 * cout * height * width).map { $0 - 0.5 })
        for pool in testPools {
            for epilogue in [ConvEpilogue.none, .relu, .addThenReLU(residual)] {
                let reference = Tensor(shape: [2, cout, height, width])
                _ = c.forwardIm2col(input, into: reference, epilogue: epilogue, pool: pool)
                let fast = Tensor(shape: [2, cout, height, width])
                c.forwardWinograd(input, into: fast, epilogue: epilogue, pool: pool)
                #expect(relativeDifference(fast, reference) < 1e-5, "\(cin)→\(cout) \(height)x\(width) \(epilogue) \(pool.threadCount) threads")
            }
        }
    }

    @Test func foldingBatchNormRefreshesTheTransformedWeights() {
        var c = conv(16, 16, "wino.fold")
        let input = Tensor(shape: [1, 16, 6, 6], values: DeterministicFill.uniform(name: "wino.fold.in", count: 16 * 36))
        _ = c(input)  // transforms the unfolded weights
        let gamma = DeterministicFill.parameter(name: "g.weight", shape: [16]).array
        c.foldBatchNorm(gamma: gamma, beta: [Float](repeating: 0.1, count: 16), mean: [Float](repeating: 0.2, count: 16),
                        variance: DeterministicFill.parameter(name: "v.running_var", shape: [16]).array)
        let reference = Tensor(shape: [1, 16, 6, 6])
        _ = c.forwardIm2col(input, into: reference, epilogue: .none, pool: .shared)
        #expect(relativeDifference(c(input), reference) < 1e-5)
    }
}
