import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

/// Soft ensembles: members' outputs brought to one resolution and averaged.
public enum Ensemble {
    /// The largest member resolution: members that differ are resampled to it
    /// (bilinear, align_corners=False) before averaging.
    static func common(_ outputs: [Tensor], pool: ComputePool) -> [Tensor] {
        let height = outputs.map(\.height).max()!, width = outputs.map(\.width).max()!
        return outputs.map { $0.height == height && $0.width == width ? $0 : Ops.resizeBilinear($0, height: height, width: width, pool: pool) }
    }

    /// Element-wise mean of tensors of one shape.
    public static func mean(_ tensors: [Tensor]) -> Tensor {
        if tensors.count == 1 { return tensors[0] }
        let out = Tensor(zeros: tensors[0].shape)
        for t in tensors {
            precondition(t.shape == out.shape, "cannot average \(t.shape) with \(out.shape)")
            for i in 0..<out.count { out.storage[i] += t.storage[i] }
        }
        let scale = 1 / Float(tensors.count)
        for i in 0..<out.count { out.storage[i] *= scale }
        return out
    }

    /// The competition team's soft ensemble: mean of logits before the sigmoid.
    public static func meanLogits(_ outputs: [Tensor], pool: ComputePool = .shared) -> Tensor {
        mean(common(outputs, pool: pool))
    }

    /// Mean of the members' probabilities (sigmoid of each member's logits).
    public static func meanProbabilities(_ outputs: [Tensor], pool: ComputePool = .shared) -> Tensor {
        mean(common(outputs, pool: pool).map { Ops.sigmoid($0, pool: pool) })
    }
}
