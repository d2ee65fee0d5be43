import CompetitionFormat
import Imaging

/// Training targets from annotation polygons. Polygons are filled at the
/// image's own resolution exactly as the competition did (`cv2.fillPoly`, see
/// `PolygonFill`), then brought to the training size by area averaging: each
/// target pixel gets the fraction of its source footprint the bone covers, and
/// the pixel is 1 when that fraction is ≥ 0.5. The image goes to the same size
/// by bilinear resampling (align_corners=False), whose sample for a target
/// pixel sits at the centre of the same footprint, so masks and image stay
/// centred on each other; averaging (not sampling) keeps thin bones from
/// vanishing or growing at 8× reductions.
public enum TargetMasks {
    /// The 29 masks at full resolution (bit c = class c in competition order).
    public static func fullResolution(_ annotation: AnnotationFile, width: Int, height: Int) -> ClassBitmap {
        var bitmap = ClassBitmap(width: width, height: height, classCount: BoneClasses.count)
        var scratch = [UInt8](repeating: 0, count: width * height)
        let polygons = annotation.polygonsByClass()
        bitmap.bits.withUnsafeMutableBufferPointer { bits in
            scratch.withUnsafeMutableBufferPointer { buffer in
                for (k, polygon) in polygons.enumerated() {
                    guard let polygon, let box = fill(polygon, into: buffer, width: width, height: height) else { continue }
                    let bit = UInt32(1) << UInt32(k)
                    for y in box.y0...box.y1 {
                        for x in box.x0...box.x1 where buffer[y * width + x] != 0 {
                            bits[y * width + x] |= bit
                            buffer[y * width + x] = 0
                        }
                    }
                }
            }
        }
        return bitmap
    }

    /// Per class the covered fraction of each pixel of a `size`×`size` grid over
    /// the image, as 29 planes; `scratch` is a zeroed buffer of width·height
    /// bytes, reused between calls and left zeroed.
    static func coverage(_ polygons: [[Point]?], width: Int, height: Int, size: Int,
                         scratch: inout [UInt8]) -> [Float] {
        if scratch.count != width * height { scratch = [UInt8](repeating: 0, count: width * height) }
        let plane = size * size
        var out = [Float](repeating: 0, count: BoneClasses.count * plane)
        let xs = AreaAxis(inSize: width, outSize: size), ys = AreaAxis(inSize: height, outSize: size)
        scratch.withUnsafeMutableBufferPointer { buffer in
            out.withUnsafeMutableBufferPointer { out in
                for (k, polygon) in polygons.enumerated() {
                    guard let polygon, let box = fill(polygon, into: buffer, width: width, height: height) else { continue }
                    let dst = out.baseAddress! + k * plane
                    let (ox0, ox1) = xs.outputs(covering: box.x0, box.x1)
                    let (oy0, oy1) = ys.outputs(covering: box.y0, box.y1)
                    for oy in oy0...oy1 {
                        for e in ys.range(oy) {
                            let sy = ys.index[e]
                            guard sy >= box.y0 && sy <= box.y1 else { continue }
                            let wy = ys.weight[e]
                            let row = buffer.baseAddress! + sy * width
                            for ox in ox0...ox1 {
                                var sum: Float = 0
                                for f in xs.range(ox) where row[xs.index[f]] != 0 { sum += xs.weight[f] }
                                dst[oy * size + ox] += wy * sum
                            }
                        }
                    }
                    for y in box.y0...box.y1 { (buffer.baseAddress! + y * width + box.x0).update(repeating: 0, count: box.x1 - box.x0 + 1) }
                }
            }
        }
        return out
    }

    /// Fills a polygon with 1 and returns the pixel box it may have touched (nil when off the image).
    private static func fill(_ polygon: [Point], into buffer: UnsafeMutableBufferPointer<UInt8>,
                             width: Int, height: Int) -> (x0: Int, x1: Int, y0: Int, y1: Int)? {
        guard !polygon.isEmpty else { return nil }
        var minX = Int.max, maxX = Int.min, minY = Int.max, maxY = Int.min
        for p in polygon {
            minX = min(minX, p.x)
            maxX = max(maxX, p.x)
            minY = min(minY, p.y)
            maxY = max(maxY, p.y)
        }
        // cv2.fillPoly draws outlines clipped to the image, so nothing lands outside the points' box.
        let x0 = max(minX, 0), x1 = min(maxX, width - 1), y0 = max(minY, 0), y1 = min(maxY, height - 1)
        guard x0 <= x1, y0 <= y1 else { return nil }
        PolygonFill.fill(polygon, into: buffer, width: width, height: height)
        return (x0, x1, y0, y1)
    }
}

/// Area-averaging weights along one axis: output pixel o covers the source
/// interval [o·in/out, (o+1)·in/out); each source pixel it overlaps gets the
/// overlap's share. The weights of an output sum to 1 (also when enlarging).
struct AreaAxis: Sendable {
    let inSize: Int
    let outSize: Int
    /// Entries of output o are start[o] ..< start[o + 1].
    let start: [Int]
    let index: [Int]
    let weight: [Float]

    init(inSize: Int, outSize: Int) {
        self.inSize = inSize
        self.outSize = outSize
        let step = Double(inSize) / Double(outSize)
        var start = [0], index: [Int] = [], weight: [Float] = []
        for o in 0..<outSize {
            let lo = Double(o) * step, hi = min(Double(o + 1) * step, Double(inSize))
            var i = Int(lo.rounded(.down))
            while Double(i) < hi && i < inSize {
                let overlap = min(hi, Double(i + 1)) - max(lo, Double(i))
                if overlap > 1e-12 {
                    index.append(i)
                    weight.append(Float(overlap / step))
                }
                i += 1
            }
            start.append(index.count)
        }
        self.start = start
        self.index = index
        self.weight = weight
    }

    func range(_ o: Int) -> Range<Int> { start[o]..<start[o + 1] }

    /// The outputs whose footprints meet source pixels first...last.
    func outputs(covering first: Int, _ last: Int) -> (Int, Int) {
        let lo = max(0, first * outSize / inSize - 1)
        let hi = min(outSize - 1, (last + 1) * outSize / inSize + 1)
        return (lo, hi)
    }
}
