import CompetitionFormat
import Foundation
import Segmentation
import TensorEngine

/// Competition Dice at the training size for every class and every threshold
/// of a grid at once: per image and class, the pixels above each threshold and
/// their overlap with the target, turned into `Dice.score` (the competition's
/// per-image Dice, two empty masks scoring 1) and averaged over images.
public struct ThresholdDice: Sendable {
    /// Probability thresholds tried when tuning, ascending; 0.5 is among them.
    public static let grid: [Float] = stride(from: 0.2, through: 0.8001, by: 0.05).map { Float(($0 * 100).rounded() / 100) }

    public let classes: Int
    /// sums[c * grid.count + k]: Σ over images of Dice(class c, threshold grid[k]).
    private(set) var sums: [Double]
    public private(set) var images = 0

    public init(classes: Int) {
        self.classes = classes
        sums = [Double](repeating: 0, count: classes * Self.grid.count)
    }

    /// Adds a batch of logits [N, C, H, W] against 0/1 targets of the same shape.
    public mutating func add(logits: Tensor, targets: Tensor, pool: ComputePool = .shared) {
        precondition(logits.shape == targets.shape, "logits \(logits.shape) vs targets \(targets.shape)")
        let grid = Self.grid
        let cuts = grid.map { Postprocessing.logitThreshold(probability: $0) }
        let (batch, plane) = (logits.batch, logits.height * logits.width)
        let classes = self.classes
        var batchSums = [Double](repeating: 0, count: classes * grid.count)
        batchSums.withUnsafeMutableBufferPointer { out in
            let out = out.baseAddress!
            pool.parallelFor(classes) { c in
                var predicted = [Int](repeating: 0, count: grid.count)
                var overlap = [Int](repeating: 0, count: grid.count)
                for n in 0..<batch {
                    let offset = (n * classes + c) * plane
                    let z = logits.storage + offset, t = targets.storage + offset
                    for k in 0..<grid.count { predicted[k] = 0; overlap[k] = 0 }
                    var area = 0
                    for i in 0..<plane {
                        let truth = t[i] > 0.5
                        if truth { area += 1 }
                        let value = z[i]
                        // cuts ascend, so the thresholds a value clears are a prefix.
                        var k = 0
                        while k < cuts.count && value > cuts[k] {
                            predicted[k] += 1
                            if truth { overlap[k] += 1 }
                            k += 1
                        }
                    }
                    for k in 0..<grid.count {
                        out[c * grid.count + k] += Dice.score(intersection: overlap[k], areaA: predicted[k], areaB: area)
                    }
                }
            }
        }
        for i in 0..<sums.count { sums[i] += batchSums[i] }
        images += batch
    }

    /// Mean Dice of class c at grid threshold k.
    public func dice(class c: Int, thresholdIndex k: Int) -> Double {
        images == 0 ? 0 : sums[c * Self.grid.count + k] / Double(images)
    }

    /// Mean over classes at one threshold for all (0.5 by default).
    public func meanDice(threshold: Float = 0.5) -> Double {
        let k = Self.grid.firstIndex(of: threshold) ?? Self.grid.count / 2
        return (0..<classes).map { dice(class: $0, thresholdIndex: k) }.reduce(0, +) / Double(classes)
    }

    /// Per class, the grid threshold with the best mean Dice (ties go to the one nearest 0.5).
    public func tunedThresholds() -> [Float] {
        (0..<classes).map { c in
            var best = Self.grid.firstIndex(of: 0.5)!
            for k in Self.grid.indices {
                let (score, bestScore) = (dice(class: c, thresholdIndex: k), dice(class: c, thresholdIndex: best))
                if score > bestScore || (score == bestScore && abs(Self.grid[k] - 0.5) < abs(Self.grid[best] - 0.5)) {
                    best = k
                }
            }
            return Self.grid[best]
        }
    }

    /// Mean over classes when each class uses its own threshold.
    public func meanDice(thresholds: [Float]) -> Double {
        precondition(thresholds.count == classes)
        return (0..<classes).map { c in
            dice(class: c, thresholdIndex: Self.grid.firstIndex(of: thresholds[c]) ?? Self.grid.count / 2)
        }.reduce(0, +) / Double(classes)
    }
}
