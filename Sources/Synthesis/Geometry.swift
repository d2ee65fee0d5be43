import Foundation

/// A point or direction in image space (x right, y down), in pixels.
public struct Vec2: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public init(_ x: Double, _ y: Double) {
        self.x = x
        self.y = y
    }

    static func + (a: Vec2, b: Vec2) -> Vec2 { Vec2(a.x + b.x, a.y + b.y) }
    static func - (a: Vec2, b: Vec2) -> Vec2 { Vec2(a.x - b.x, a.y - b.y) }
    static func * (a: Vec2, s: Double) -> Vec2 { Vec2(a.x * s, a.y * s) }
    var length: Double { (x * x + y * y).squareRoot() }
    var normalized: Vec2 { let l = length; return l > 0 ? Vec2(x / l, y / l) : Vec2(0, 0) }
    /// The left normal in image space (rotated -90° on screen).
    var perpendicular: Vec2 { Vec2(-y, x) }
    func dot(_ o: Vec2) -> Double { x * o.x + y * o.y }
    func rotated(by angle: Double) -> Vec2 {
        let c = cos(angle), s = sin(angle)
        return Vec2(c * x - s * y, s * x + c * y)
    }
    func rotated(by angle: Double, about pivot: Vec2) -> Vec2 { (self - pivot).rotated(by: angle) + pivot }
}

/// A similarity transform with optional mirroring: p' = R·S·(mirror(p) − origin) + offset.
struct Similarity: Sendable {
    var origin: Vec2
    var scale: Double
    var angle: Double
    var mirrorX: Bool
    var offset: Vec2

    func apply(_ p: Vec2) -> Vec2 {
        var q = p - origin
        if mirrorX { q.x = -q.x }
        return q.rotated(by: angle) * scale + offset
    }
}

/// Integer pixel index of the smallest and largest coordinate of a point set.
struct Box: Sendable {
    var minX: Double, minY: Double, maxX: Double, maxY: Double
    init(_ points: [Vec2]) {
        minX = .infinity; minY = .infinity; maxX = -.infinity; maxY = -.infinity
        for p in points {
            minX = Swift.min(minX, p.x); maxX = Swift.max(maxX, p.x)
            minY = Swift.min(minY, p.y); maxY = Swift.max(maxY, p.y)
        }
    }
}

enum Polygon {
    /// Sutherland–Hodgman clipping of a closed polygon to the rectangle [0, w−1]×[0, h−1].
    static func clip(_ polygon: [Vec2], width: Double, height: Double) -> [Vec2] {
        var out = polygon
        let planes: [(Vec2) -> Double] = [
            { $0.x }, { width - 1 - $0.x }, { $0.y }, { height - 1 - $0.y },
        ]
        for inside in planes {
            guard !out.isEmpty else { break }
            let input = out
            out = []
            var previous = input[input.count - 1]
            for current in input {
                let dc = inside(current), dp = inside(previous)
                if dc >= 0 {
                    if dp < 0 { out.append(previous + (current - previous) * (dp / (dp - dc))) }
                    out.append(current)
                } else if dp >= 0 {
                    out.append(previous + (current - previous) * (dp / (dp - dc)))
                }
                previous = current
            }
        }
        return out
    }

    /// Rounds to integer pixels and drops consecutive duplicates (and a closing duplicate).
    static func rounded(_ polygon: [Vec2]) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        out.reserveCapacity(polygon.count)
        for p in polygon {
            let q = (Int(p.x.rounded()), Int(p.y.rounded()))
            if let last = out.last, last == q { continue }
            out.append(q)
        }
        while out.count > 1, out[0] == out[out.count - 1] { out.removeLast() }
        return out
    }

    /// Twice the signed area (positive for counter-clockwise in a y-up frame).
    static func doubleArea(_ p: [Vec2]) -> Double {
        var a = 0.0
        for i in 0..<p.count {
            let j = (i + 1) % p.count
            a += p[i].x * p[j].y - p[j].x * p[i].y
        }
        return a
    }

    /// Convex hull (Andrew's monotone chain), counter-clockwise in image space order.
    static func convexHull(_ points: [Vec2]) -> [Vec2] {
        let sorted = points.sorted { $0.x != $1.x ? $0.x < $1.x : $0.y < $1.y }
        guard sorted.count > 2 else { return sorted }
        func cross(_ o: Vec2, _ a: Vec2, _ b: Vec2) -> Double { (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x) }
        var lower: [Vec2] = []
        for p in sorted {
            while lower.count >= 2, cross(lower[lower.count - 2], lower[lower.count - 1], p) <= 0 { lower.removeLast() }
            lower.append(p)
        }
        var upper: [Vec2] = []
        for p in sorted.reversed() {
            while upper.count >= 2, cross(upper[upper.count - 2], upper[upper.count - 1], p) <= 0 { upper.removeLast() }
            upper.append(p)
        }
        lower.removeLast()
        upper.removeLast()
        return lower + upper
    }
}

/// Catmull–Rom interpolation through `values` at evenly spaced knots, evaluated at t ∈ [0, 1].
func catmullRom(_ values: [Double], _ t: Double) -> Double {
    let n = values.count
    let f = Swift.max(0, Swift.min(Double(n - 1), t * Double(n - 1)))
    let i = Swift.min(n - 2, Int(f))
    let u = f - Double(i)
    let p0 = values[Swift.max(0, i - 1)], p1 = values[i], p2 = values[i + 1], p3 = values[Swift.min(n - 1, i + 2)]
    let u2 = u * u, u3 = u2 * u
    return 0.5 * (2 * p1 + (-p0 + p2) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u2 + (-p0 + 3 * p1 - 3 * p2 + p3) * u3)
}
