import Foundation
import TensorEngine

/// The competition team's loss: 0.5 · BCE-with-logits + 0.5 · Dice, with
///
///     p = sigmoid(z)
///     BCE    = mean over every element of max(z, 0) − z·t + log(1 + e^−|z|)
///     Dice_c = 1 − (2·Σ p·t + 1) / (Σ p + Σ t + 1)   (sums over batch and pixels of class c)
///     Dice   = mean over classes of Dice_c
///
/// tools/make_training_fixtures.py computes the same in PyTorch.
public enum SegmentationLoss {
    public struct Result {
        public let loss: Double
        public let bce: Double
        public let dice: Double
        /// d loss / d logits.
        public let gradient: Tensor
    }

    public static let bceWeight = 0.5
    public static let diceWeight = 0.5
    public static let smooth = 1.0

    public static func bceDice(logits: Tensor, targets: Tensor, pool: ComputePool = .shared) -> Result {
        precondition(logits.shape == targets.shape, "logits \(logits.shape) and targets \(targets.shape) differ")
        let (batch, classes) = (logits.batch, logits.channels)
        let plane = logits.height * logits.width
        let total = Double(logits.count)
        let gradient = Tensor(shape: logits.shape)
        let probabilities = Ops.sigmoid(logits, pool: pool)
        // Per class: Σ bce, Σ p·t, Σ p, Σ t.
        var sums = [Double](repeating: 0, count: classes * 4)
        sums.withUnsafeMutableBufferPointer { buffer in
            let out = buffer.baseAddress!
            pool.parallelFor(classes) { c in
                var bce: Double = 0, pt: Double = 0, ps: Double = 0, ts: Double = 0
                for n in 0..<batch {
                    let offset = (n * classes + c) * plane
                    let z = logits.storage + offset, t = targets.storage + offset, p = probabilities.storage + offset
                    for i in 0..<plane {
                        let zi = Double(z[i]), ti = Double(t[i])
                        // log1p(e^−|z|) in Float (ample for a mean over millions of terms; Double's is 3× slower).
                        bce += max(zi, 0) - zi * ti + Double(log1p(exp(-abs(z[i]))))
                        pt += Double(p[i]) * ti
                        ps += Double(p[i])
                        ts += ti
                    }
                }
                out[c * 4] = bce
                out[c * 4 + 1] = pt
                out[c * 4 + 2] = ps
                out[c * 4 + 3] = ts
            }
        }
        var bce: Double = 0, dice: Double = 0
        for c in 0..<classes {
            bce += sums[c * 4]
            dice += 1 - (2 * sums[c * 4 + 1] + smooth) / (sums[c * 4 + 2] + sums[c * 4 + 3] + smooth)
        }
        bce /= total
        dice /= Double(classes)
        pool.parallelFor(classes) { c in
            let intersection = 2 * sums[c * 4 + 1] + smooth
            let union = sums[c * 4 + 2] + sums[c * 4 + 3] + smooth
            // d Dice_c / d p_i = −(2·t_i·union − intersection) / union²
            let diceScale = diceWeight / Double(classes) / (union * union)
            for n in 0..<batch {
                let offset = (n * classes + c) * plane
                let t = targets.storage + offset, p = probabilities.storage + offset, g = gradient.storage + offset
                for i in 0..<plane {
                    let pi = Double(p[i]), ti = Double(t[i])
                    let dBCE = (pi - ti) / total
                    let dDice = -(2 * ti * union - intersection) * diceScale * pi * (1 - pi)
                    g[i] = Float(bceWeight * dBCE + dDice)
                }
            }
        }
        return Result(loss: bceWeight * bce + diceWeight * dice, bce: bce, dice: dice, gradient: gradient)
    }
}
