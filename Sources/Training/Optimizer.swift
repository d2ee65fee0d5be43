import Foundation
import TensorEngine

/// torch.optim.AdamW with its defaults (betas 0.9/0.999, eps 1e-8, weight decay
/// 0.01, bias correction), step for step as PyTorch's single-tensor CPU path:
/// decoupled decay, then lerp / addcmul of the moments, then addcdiv.
public final class AdamW {
    public var learningRate: Float
    public var beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    public let parameters: [Parameter]
    /// Updates made so far (internal setter: a checkpoint restores it with the moments).
    public internal(set) var step = 0
    let firstMoments: [Tensor]
    let secondMoments: [Tensor]

    public init(parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        firstMoments = parameters.map { Tensor(zeros: $0.value.shape) }
        secondMoments = parameters.map { Tensor(zeros: $0.value.shape) }
    }

    public func zeroGrad() { parameters.forEach { $0.zeroGrad() } }

    public func update(pool: ComputePool = .shared) {
        step += 1
        // PyTorch forms these in Python floats (double), then uses them as float32 scalars.
        let lr = Double(learningRate)
        let decay = Float(1 - lr * Double(weightDecay))
        let correction1 = 1 - pow(Double(beta1), Double(step))
        let correction2Root = (1 - pow(Double(beta2), Double(step))).squareRoot()
        let stepSize = Float(lr / correction1)
        let root = Float(correction2Root)
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        let (oneMinusB1, oneMinusB2) = (Float(1 - Double(b1)), Float(1 - Double(b2)))
        // The same operations in the same order per element, eight lanes at a time
        // (the four pointers defeat the compiler's own vectorisation), over 64K chunks.
        let chunk = 1 << 16
        let chunkStarts = parameters.indices.flatMap { index in
            stride(from: 0, to: parameters[index].value.count, by: chunk).map { (index, $0) }
        }
        pool.parallelFor(chunkStarts.count) { item in
            let (index, start) = chunkStarts[item]
            let end = min(parameters[index].value.count, start + chunk)
            let p = parameters[index].value.storage, g = parameters[index].grad.storage
            let m = firstMoments[index].storage, v = secondMoments[index].storage
            typealias V = Vector.V
            var i = start
            while i + 8 <= end {
                let gv = Vector.load(g + i)
                var pv = Vector.load(p + i) * V(repeating: decay)
                let mv = Vector.load(m + i) + V(repeating: oneMinusB1) * (gv - Vector.load(m + i))
                let vv = Vector.load(v + i) * V(repeating: b2) + V(repeating: oneMinusB2) * (gv * gv)
                let denom = vv.squareRoot() / V(repeating: root) + V(repeating: eps)
                pv += V(repeating: -stepSize) * (mv / denom)
                Vector.store(pv, p + i)
                Vector.store(mv, m + i)
                Vector.store(vv, v + i)
                i += 8
            }
            while i < end {
                p[i] *= decay
                m[i] += oneMinusB1 * (g[i] - m[i])
                v[i] = v[i] * b2 + oneMinusB2 * (g[i] * g[i])
                let denom = v[i].squareRoot() / root + eps
                p[i] += -stepSize * (m[i] / denom)
                i += 1
            }
        }
    }
}

/// torch.nn.utils.clip_grad_norm_: scales every gradient by
/// max_norm / (total_norm + 1e-6) when that is below 1; returns the total norm
/// before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: [Parameter], maxNorm: Float) -> Float {
    var squares: Double = 0
    for parameter in parameters {
        var s: Double = 0
        for i in 0..<parameter.grad.count { let g = Double(parameter.grad.storage[i]); s += g * g }
        squares += s
    }
    let total = Float(squares.squareRoot())
    let coefficient = maxNorm / (total + 1e-6)
    if coefficient < 1 {
        for parameter in parameters {
            for i in 0..<parameter.grad.count { parameter.grad.storage[i] *= coefficient }
        }
    }
    return total
}
