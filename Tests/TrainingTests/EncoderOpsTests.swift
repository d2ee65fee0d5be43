import Foundation
import Testing
import TensorEngine
@testable import Training

/// The DenseNet and HRNet ops' backward passes against central finite differences
/// (OpGradientTests.check), and their forward values against direct definitions.
@Suite struct TrainableEncoderOpsTests {
    /// cat([x, sigmoid(x), y, constant], dim=1): every part gets its channels' gradient,
    /// a part that needs none is skipped.
    @Test func concatenationBackward() {
        let y = OpGradientTests.tensor("encops.y", [2, 2, 5, 4])
        let constant = Node(OpGradientTests.tensor("encops.c", [2, 1, 5, 4]), requiresGradient: false)
        let yNode = Node(y)
        let ratio = OpGradientTests.check(OpGradientTests.tensor("encops.x", [2, 3, 5, 4]), extra: [(y, { yNode.grad! })]) { node, tape in
            let parts = [node, TrainOps.sigmoid(node, tape: tape), tape == nil ? Node(y) : yNode, constant]
            return EncoderOps.concat(parts, tape: tape)
        }
        #expect(ratio < 1e-3, "concat gradient off by \(ratio) of max")
        #expect(constant.grad == nil, "no gradient buffer for a constant part")
    }

    @Test func concatenationForward() {
        let a = OpGradientTests.tensor("encops.a", [2, 3, 4, 5]), b = OpGradientTests.tensor("encops.b", [2, 1, 4, 5])
        let joined = EncoderOps.concat([Node(a), Node(b)], tape: nil).value
        #expect(joined.shape == [2, 4, 4, 5])
        for n in 0..<2 {
            for c in 0..<4 {
                for i in 0..<20 {
                    let expected = c < 3 ? a.storage[(n * 3 + c) * 20 + i] : b.storage[n * 20 + i]
                    #expect(joined.storage[(n * 4 + c) * 20 + i] == expected)
                }
            }
        }
    }

    /// HRNet's fuse: x + up2(pool2(x)) + up4(pool4(x)) + y, the terms coming from one input
    /// at three resolutions plus a second input.
    @Test func upsampledSumBackward() {
        let y = OpGradientTests.tensor("encops.fy", [2, 3, 8, 8])
        let yNode = Node(y)
        let ratio = OpGradientTests.check(OpGradientTests.tensor("encops.fx", [2, 3, 8, 8]), extra: [(y, { yNode.grad! })]) { node, tape in
            let half = TrainOps.avgPool2d(node, kernel: 2, stride: 2, tape: tape)
            let quarter = TrainOps.avgPool2d(node, kernel: 4, stride: 4, tape: tape)
            return EncoderOps.sumUpsampled([(node, 1), (half, 2), (quarter, 4), (tape == nil ? Node(y) : yNode, 1)], tape: tape)
        }
        #expect(ratio < 1e-3, "upsampled sum gradient off by \(ratio) of max")
    }

    /// Forward: the low-resolution term first (so the sum starts from an upsampled tensor),
    /// against nearest upsampling (F.interpolate(scale_factor=f, mode="nearest")) by index.
    @Test func upsampledSumForward() {
        let low = OpGradientTests.tensor("encops.low", [1, 2, 3, 2]), full = OpGradientTests.tensor("encops.full", [1, 2, 12, 8])
        let sum = EncoderOps.sumUpsampled([(Node(low), 4), (Node(full), 1)], tape: nil).value
        #expect(sum.shape == [1, 2, 12, 8])
        for c in 0..<2 {
            for yy in 0..<12 {
                for xx in 0..<8 {
                    let expected = low.storage[c * 6 + (yy / 4) * 2 + xx / 4] + full.storage[c * 96 + yy * 8 + xx]
                    #expect(sum.storage[c * 96 + yy * 8 + xx] == expected)
                }
            }
        }
    }
}
