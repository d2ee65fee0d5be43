import CompetitionFormat
import Imaging
import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

/// Network output → masks at the radiograph's own size, as the competition did:
/// bilinear upsample (align_corners=False) → sigmoid → > threshold. The three
/// steps are fused so the 29×H×W float volume (486 MB at 2048²) never exists:
/// each output row is interpolated from cached horizontally-interpolated source
/// rows (PyTorch's order of operations) and compared at once.
public enum Postprocessing {
    /// sigmoid(x) > t  ⇔  x > log(t / (1 − t)), so logits are compared without exp.
    public static func logitThreshold(probability t: Float) -> Float {
        if t <= 0 { return -.infinity }
        if t >= 1 { return .infinity }
        return Float(log(Double(t) / (1 - Double(t))))
    }

    /// Sets bit c of each pixel where the upsampled value of channel c is > thresholds[c]
    /// (thresholds are in the values' own space: logits or probabilities).
    public static func threshold(_ values: Tensor, height: Int, width: Int, thresholds: [Float],
                                 pool: ComputePool = .shared) -> ClassBitmap {
        let classes = values.channels
        precondition(values.batch == 1 && thresholds.count == classes && classes <= 32)
        var bitmap = ClassBitmap(width: width, height: height, classCount: classes)
        let (h, w) = (values.height, values.width)
        let xs = BilinearAxis(inSize: w, outSize: width)
        let ys = BilinearAxis(inSize: h, outSize: height)
        let bandRows = max(1, height / (pool.threadCount * 8))
        let bands = (height + bandRows - 1) / bandRows
        bitmap.bits.withUnsafeMutableBufferPointer { bitsBuffer in
            let bits = bitsBuffer.baseAddress!
            pool.parallelFor(bands) { band in
                let y0 = band * bandRows, y1 = min(height, y0 + bandRows)
                // Two horizontally interpolated source rows, reused while the output rows need them.
                let rowA = UnsafeMutablePointer<Float>.allocate(capacity: width)
                let rowB = UnsafeMutablePointer<Float>.allocate(capacity: width)
                defer { rowA.deallocate(); rowB.deallocate() }
                for c in 0..<classes {
                    let plane = values.storage + c * h * w
                    let bit = UInt32(1) << UInt32(c)
                    let limit = thresholds[c]
                    var cachedA = -1, cachedB = -1
                    func horizontal(_ sy: Int, into row: UnsafeMutablePointer<Float>) {
                        let src = plane + sy * w
                        for ox in 0..<width {
                            let l1 = xs.lambda1[ox]
                            row[ox] = (1 - l1) * src[xs.index0[ox]] + l1 * src[xs.index1[ox]]
                        }
                    }
                    for oy in y0..<y1 {
                        let sy0 = ys.index0[oy], sy1 = ys.index1[oy]
                        if cachedA != sy0 {
                            if cachedB == sy0 { rowA.update(from: rowB, count: width) } else { horizontal(sy0, into: rowA) }
                            cachedA = sy0
                        }
                        if cachedB != sy1 {
                            horizontal(sy1, into: rowB)
                            cachedB = sy1
                        }
                        let ly1 = ys.lambda1[oy], ly0 = 1 - ly1
                        let out = bits + oy * width
                        for ox in 0..<width where ly0 * rowA[ox] + ly1 * rowB[ox] > limit {
                            out[ox] |= bit
                        }
                    }
                }
            }
        }
        return bitmap
    }

    /// Every class's runs in one row-major pass: only pixels whose class set
    /// differs from the previous pixel's do any work.
    public static func runs(of bitmap: ClassBitmap) -> [[Run]] {
        var runs = [[Run]](repeating: [], count: bitmap.classCount)
        var open = [Int](repeating: 0, count: bitmap.classCount)
        var previous: UInt32 = 0
        bitmap.bits.withUnsafeBufferPointer { bits in
            for i in 0..<bits.count {
                let value = bits[i]
                if value == previous { continue }
                var changed = value ^ previous
                while changed != 0 {
                    let c = changed.trailingZeroBitCount
                    if value & (1 << UInt32(c)) != 0 {
                        open[c] = i
                    } else {
                        runs[c].append(Run(start: open[c], length: i - open[c]))
                    }
                    changed &= changed - 1
                }
                previous = value
            }
        }
        var last = previous
        while last != 0 {
            let c = last.trailingZeroBitCount
            runs[c].append(Run(start: open[c], length: bitmap.bits.count - open[c]))
            last &= last - 1
        }
        return runs
    }

    /// Per pixel and class: set where at least `minVotes` of the members' bitmaps are set.
    /// Bit-sliced: a 4-plane counter per pixel word adds a member with a few
    /// bitwise ops (a ripple-carry add of one bit), then one comparator against minVotes.
    public static func vote(_ members: [ClassBitmap], minVotes: Int) -> ClassBitmap {
        precondition(!members.isEmpty && members.count < 16 && minVotes >= 0)
        let first = members[0]
        var result = ClassBitmap(width: first.width, height: first.height, classCount: first.classCount)
        if minVotes == 0 {
            let all: UInt32 = first.classCount == 32 ? ~0 : (1 << UInt32(first.classCount)) - 1
            for i in 0..<result.bits.count { result.bits[i] = all }
            return result
        }
        if minVotes > members.count { return result }
        for i in 0..<first.bits.count {
            var c0: UInt32 = 0, c1: UInt32 = 0, c2: UInt32 = 0, c3: UInt32 = 0
            for m in members {
                let v = m.bits[i]
                let k0 = c0 & v; c0 ^= v
                let k1 = c1 & k0; c1 ^= k0
                let k2 = c2 & k1; c2 ^= k1
                c3 ^= k2
            }
            var greater: UInt32 = 0, equal: UInt32 = ~0
            for (p, plane) in [(3, c3), (2, c2), (1, c1), (0, c0)] {
                if (minVotes >> p) & 1 == 1 {
                    equal &= plane
                } else {
                    greater |= equal & plane
                    equal &= ~plane
                }
            }
            result.bits[i] = greater | equal
        }
        return result
    }
}
