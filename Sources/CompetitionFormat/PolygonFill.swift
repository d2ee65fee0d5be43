/// Polygon rasterising that gives exactly the pixels of OpenCV's
/// `cv2.fillPoly(mask, [pts], 1)` for integer points (shift 0, LINE_8), the
/// call the competition used to turn annotation polygons into masks:
///
/// 1. every edge, closing edge included, is drawn as an 8-connected line
///    (OpenCV's LineIterator: walked from its left end, error term
///    `dx - 2·dy`, endpoints clipped to the image by `clipLine`), so the
///    boundary pixels are always in the mask;
/// 2. the interior is filled scanline by scanline with the even-odd rule over
///    the non-horizontal edges, each edge active on rows `y0 ..< y1`, its x in
///    16.16 fixed point stepping by `dx = (Δx << 16) / Δy` (truncated), and
///    each span drawn from `ceil(left)` to `floor(right)` (FillEdgeCollection).
///    Edges leaving the image are re-based on their clipped endpoints as
///    OpenCV does.
///
/// Self-intersecting and concave polygons follow the same rules; points
/// outside the image are clipped. Coordinates must lie within ±2²⁴ (the
/// annotation reader checks this); arithmetic wraps rather than traps beyond.
public enum PolygonFill {
    static let shift = 16

    /// A mask of `width`×`height` with the polygon filled with 1.
    public static func mask(_ points: [Point], width: Int, height: Int) -> BinaryMask {
        var mask = BinaryMask(width: width, height: height)
        fill(points, into: &mask)
        return mask
    }

    /// Sets the polygon's pixels of `mask` to `value`.
    public static func fill(_ points: [Point], into mask: inout BinaryMask, value: UInt8 = 1) {
        let width = mask.width, height = mask.height
        mask.pixels.withUnsafeMutableBufferPointer { buffer in
            fill(points, into: buffer, width: width, height: height, value: value)
        }
    }

    /// The same on a raw row-major buffer of `width`×`height` bytes.
    public static func fill(_ points: [Point], into pixels: UnsafeMutableBufferPointer<UInt8>,
                            width: Int, height: Int, value: UInt8 = 1) {
        precondition(pixels.count == width * height, "buffer does not match \(width)x\(height)")
        guard !points.isEmpty, width > 0, height > 0, let base = pixels.baseAddress else { return }

        struct Edge {
            var y0: Int
            var y1: Int
            var x: Int
            var dx: Int
        }
        var edges = [Edge]()
        edges.reserveCapacity(points.count)

        var p0 = points[points.count - 1]
        for p1 in points {
            defer { p0 = p1 }
            drawLine(x1: p0.x, y1: p0.y, x2: p1.x, y2: p1.y, base: base, width: width, height: height, value: value)

            // CollectPolyEdges with shift 0: x in 16.16, y in pixels.
            var c0y = p0.y, c1y = p1.y
            var t0x = p0.x, t0y = p0.y, t1x = p1.x, t1y = p1.y
            if !(UInt(bitPattern: t0x) < UInt(width) && UInt(bitPattern: t1x) < UInt(width)
                && UInt(bitPattern: t0y) < UInt(height) && UInt(bitPattern: t1y) < UInt(height)) {
                _ = clipLine(width: width, height: height, &t0x, &t0y, &t1x, &t1y)
                if t0y != t1y {
                    c0y = t0y
                    c1y = t1y
                }
            }
            let c0x = t0x &<< shift, c1x = t1x &<< shift
            if p0.y == p1.y { continue }
            let dx = (c1x &- c0x) / (c1y - c0y)
            if p0.y < p1.y {
                edges.append(Edge(y0: p0.y, y1: p1.y, x: c0x &+ (p0.y &- c0y) &* dx, dx: dx))
            } else {
                edges.append(Edge(y0: p1.y, y1: p0.y, x: c1x &+ (p1.y &- c1y) &* dx, dx: dx))
            }
        }
        guard edges.count >= 2 else { return }

        // FillEdgeCollection: leave early when the polygon misses the image.
        var yMin = Int.max, yMax = Int.min, xMin = Int.max, xMax = Int.min
        for e in edges {
            let xEnd = e.x &+ (e.y1 - e.y0) &* e.dx
            yMin = min(yMin, e.y0)
            yMax = max(yMax, e.y1)
            xMin = min(xMin, e.x, xEnd)
            xMax = max(xMax, e.x, xEnd)
        }
        if yMax < 0 || yMin >= height || xMax < 0 || xMin >= (width &<< shift) { return }

        edges.sort { $0.y0 < $1.y0 }
        let rowEnd = min(yMax, height)
        let roundUp = (1 << shift) - 1
        var next = 0
        var active = [Int]()  // indices into edges
        var xs = [Int]()
        var y = max(yMin, 0)
        // Edges that start above the image are active from row 0.
        while y < rowEnd {
            while next < edges.count && edges[next].y0 <= y {
                active.append(next)
                next += 1
            }
            active.removeAll { edges[$0].y1 <= y }
            if active.isEmpty {
                if next >= edges.count { break }
                y = max(y + 1, edges[next].y0)
                continue
            }
            xs.removeAll(keepingCapacity: true)
            for index in active {
                let e = edges[index]
                xs.append(e.x &+ (y - e.y0) &* e.dx)
            }
            insertionSort(&xs)
            let row = base + y * width
            var k = 0
            while k + 1 < xs.count {
                var left = (xs[k] &+ roundUp) >> shift
                var right = xs[k + 1] >> shift
                if left < width && right >= 0 {
                    if left < 0 { left = 0 }
                    if right >= width { right = width - 1 }
                    if right >= left { (row + left).update(repeating: value, count: right - left + 1) }
                }
                k += 2
            }
            y += 1
        }
    }

    private static func insertionSort(_ a: inout [Int]) {
        if a.count < 2 { return }
        for i in 1..<a.count {
            let v = a[i]
            var j = i - 1
            while j >= 0 && a[j] > v {
                a[j + 1] = a[j]
                j -= 1
            }
            a[j + 1] = v
        }
    }

    /// OpenCV's clipLine on a `width`×`height` image (integer arithmetic,
    /// division truncating toward zero). Returns whether any part is inside.
    @discardableResult
    static func clipLine(width: Int, height: Int, _ x1: inout Int, _ y1: inout Int, _ x2: inout Int, _ y2: inout Int) -> Bool {
        let right = width - 1, bottom = height - 1
        if width <= 0 || height <= 0 { return false }
        func code(_ x: Int, _ y: Int) -> Int {
            (x < 0 ? 1 : 0) + (x > right ? 2 : 0) + (y < 0 ? 4 : 0) + (y > bottom ? 8 : 0)
        }
        var c1 = code(x1, y1), c2 = code(x2, y2)
        if (c1 & c2) == 0 && (c1 | c2) != 0 {
            if c1 & 12 != 0 {
                let a = c1 < 8 ? 0 : bottom
                x1 = x1 &+ ((a - y1) &* (x2 - x1)) / (y2 - y1)
                y1 = a
                c1 = (x1 < 0 ? 1 : 0) + (x1 > right ? 2 : 0)
            }
            if c2 & 12 != 0 {
                let a = c2 < 8 ? 0 : bottom
                x2 = x2 &+ ((a - y2) &* (x2 - x1)) / (y2 - y1)
                y2 = a
                c2 = (x2 < 0 ? 1 : 0) + (x2 > right ? 2 : 0)
            }
            if (c1 & c2) == 0 && (c1 | c2) != 0 {
                if c1 != 0 {
                    let a = c1 == 1 ? 0 : right
                    y1 = y1 &+ ((a - x1) &* (y2 - y1)) / (x2 - x1)
                    x1 = a
                    c1 = 0
                }
                if c2 != 0 {
                    let a = c2 == 1 ? 0 : right
                    y2 = y2 &+ ((a - x2) &* (y2 - y1)) / (x2 - x1)
                    x2 = a
                    c2 = 0
                }
            }
        }
        return (c1 | c2) == 0
    }

    /// OpenCV's 8-connected Line: clipped, walked from the left end.
    static func drawLine(x1 ax: Int, y1 ay: Int, x2 bx: Int, y2 by: Int,
                         base: UnsafeMutablePointer<UInt8>, width: Int, height: Int, value: UInt8) {
        var x1 = ax, y1 = ay, x2 = bx, y2 = by
        if !(UInt(bitPattern: x1) < UInt(width) && UInt(bitPattern: x2) < UInt(width)
            && UInt(bitPattern: y1) < UInt(height) && UInt(bitPattern: y2) < UInt(height)) {
            if !clipLine(width: width, height: height, &x1, &y1, &x2, &y2) { return }
        }
        var dx = x2 - x1, dy = y2 - y1
        if dx < 0 {
            dx = -dx
            dy = -dy
            swap(&x1, &x2)
            swap(&y1, &y2)
        }
        var stepMajor = 1, stepMinor = width  // x major: step x, sometimes y
        if dy < 0 {
            dy = -dy
            stepMinor = -width
        }
        if dy > dx {
            swap(&dx, &dy)
            // y major: always step y (signed), sometimes x (+1: walking from the left end).
            stepMajor = stepMinor
            stepMinor = 1
        }
        var err = dx - 2 * dy
        var p = base + (y1 * width + x1)
        for _ in 0...dx {
            p.pointee = value
            if err < 0 {
                err += 2 * dx - 2 * dy
                p += stepMajor + stepMinor
            } else {
                err -= 2 * dy
                p += stepMajor
            }
        }
    }
}
