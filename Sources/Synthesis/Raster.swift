import Foundation

/// The density one bone adds, on the pixels of its bounding box. Non-zero exactly
/// on the pixels its integer polygon covers: (x, y) inside by the even–odd rule,
/// or within half a pixel of the outline (as a filled polygon with its outline drawn).
public struct BoneLayer: Sendable {
    public let label: String
    public let originX: Int
    public let originY: Int
    public let width: Int
    public let height: Int
    public var density: [Float]

    public func value(x: Int, y: Int) -> Float {
        let lx = x - originX, ly = y - originY
        guard lx >= 0, ly >= 0, lx < width, ly < height else { return 0 }
        return density[ly * width + lx]
    }
}

/// Cheap smooth value noise: a hashed lattice with smoothstep interpolation.
struct ValueNoise: Sendable {
    let seed: UInt64
    let cell: Float

    @inline(__always) private func lattice(_ ix: Int32, _ iy: Int32) -> Float {
        var h = UInt64(UInt32(bitPattern: ix)) | (UInt64(UInt32(bitPattern: iy)) << 32)
        h ^= seed
        h = (h ^ (h >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        h = (h ^ (h >> 33)) &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return Float(h >> 40) * (1.0 / 16_777_216.0)
    }

    /// In [0, 1).
    @inline(__always) func sample(_ x: Float, _ y: Float) -> Float {
        let fx = x / cell, fy = y / cell
        let x0 = fx.rounded(.down), y0 = fy.rounded(.down)
        var tx = fx - x0, ty = fy - y0
        tx = tx * tx * (3 - 2 * tx)
        ty = ty * ty * (3 - 2 * ty)
        let ix = Int32(x0), iy = Int32(y0)
        let a = lattice(ix, iy), b = lattice(ix + 1, iy), c = lattice(ix, iy + 1), d = lattice(ix + 1, iy + 1)
        let top = a + (b - a) * tx, bottom = c + (d - c) * tx
        return top + (bottom - top) * ty
    }
}

enum Raster {
    /// Attenuation per template pixel of cortical bone.
    static let corticalMu: Float = 0.032

    /// Renders one bone's density from its integer polygon: the projected thickness
    /// of a tube whose wall is the cortex (bright rim) around a lighter medulla with
    /// trabecular texture, as a function of the distance to the outline.
    /// Along the shaft (between `proximal` and `distal`) the cortex is thick and the canal
    /// dark; towards the ends it thins to a subchondral rim over denser trabecular bone.
    static func renderBone(label: String, polygon: [(Int, Int)], halfWidth: Double, cortex: Double, medulla: Double,
                           proximal: Vec2, distal: Vec2, tubular: Bool,
                           pixelScale: Double, imageSize: Int, texture: ValueNoise) -> BoneLayer {
        guard polygon.count >= 3 else {
            return BoneLayer(label: label, originX: 0, originY: 0, width: 0, height: 0, density: [])
        }
        var minX = Int.max, minY = Int.max, maxX = Int.min, maxY = Int.min
        for (x, y) in polygon {
            minX = min(minX, x); maxX = max(maxX, x); minY = min(minY, y); maxY = max(maxY, y)
        }
        minX = max(0, minX - 1); minY = max(0, minY - 1)
        maxX = min(imageSize - 1, maxX + 1); maxY = min(imageSize - 1, maxY + 1)
        let w = maxX - minX + 1, h = maxY - minY + 1
        var density = [Float](repeating: 0, count: w * h)

        let n = polygon.count
        var ex0 = [Double](), ey0 = [Double](), ex1 = [Double](), ey1 = [Double]()
        for i in 0..<n {
            let (ax, ay) = polygon[i], (bx, by) = polygon[(i + 1) % n]
            ex0.append(Double(ax)); ey0.append(Double(ay)); ex1.append(Double(bx)); ey1.append(Double(by))
        }
        let R = max(1.0, halfWidth)
        let unit = Float(1 / pixelScale)
        let mu = corticalMu
        let axis = distal - proximal
        let axisLength2 = max(axis.dot(axis), 1e-9)
        // Trabeculae run along a long bone: texture sampled in the bone's frame, stretched along its axis.
        let unitAxis = axis.normalized
        let stretch: Float = tubular ? 0.3 : 0.8
        let ax = Float(unitAxis.x), ay = Float(unitAxis.y)
        // Cortex fraction and medulla density by position along the bone (u in 0…1), tabulated.
        // The metaphysis (thin cortex) spans a fraction of the bone, but no more than a
        // forearm bone's last ~200 template pixels.
        let stations = 128
        var cortexAt = [Double](repeating: cortex, count: stations + 1)
        var medullaAt = [Float](repeating: Float(medulla), count: stations + 1)
        if tubular {
            let length = axisLength2.squareRoot()
            let reference = min(length, 700 * pixelScale)
            let endZone = 0.06 * reference, ramp = 0.22 * reference
            for i in 0...stations {
                let u = Double(i) / Double(stations)
                let fromEnd = min(u, 1 - u) * length
                let s = max(0, min(1, (fromEnd - endZone) / ramp))
                let shaft = s * s * (3 - 2 * s)
                cortexAt[i] = 0.10 + (cortex + 0.10 - 0.10) * shaft
                medullaAt[i] = Float(medulla * (1 - shaft) * 2.1 + medulla * 0.85 * shaft)
            }
        }
        var crossings = [Double]()
        var near = [Int]()
        crossings.reserveCapacity(16)
        near.reserveCapacity(64)
        density.withUnsafeMutableBufferPointer { out in
            for y in minY...maxY {
                let yd = Double(y)
                crossings.removeAll(keepingCapacity: true)
                near.removeAll(keepingCapacity: true)
                var lo = Double.infinity, hi = -Double.infinity
                for e in 0..<n {
                    let y0 = ey0[e], y1 = ey1[e]
                    if (y0 <= yd && yd < y1) || (y1 <= yd && yd < y0) {
                        let xc = ex0[e] + (yd - y0) * (ex1[e] - ex0[e]) / (y1 - y0)
                        crossings.append(xc)
                        lo = min(lo, xc); hi = max(hi, xc)
                    }
                    let eMin = min(y0, y1), eMax = max(y0, y1)
                    if eMin - R - 1 <= yd && yd <= eMax + R + 1 { near.append(e) }
                    if eMin - 0.5 <= yd && yd <= eMax + 0.5 {
                        lo = min(lo, min(ex0[e], ex1[e])); hi = max(hi, max(ex0[e], ex1[e]))
                    }
                }
                guard lo <= hi else { continue }
                crossings.sort()
                let xStart = max(minX, Int((lo - 1).rounded(.down))), xEnd = min(maxX, Int((hi + 1).rounded(.up)))
                guard xStart <= xEnd else { continue }
                var k = 0
                var inside = false
                let row = (y - minY) * w - minX
                for x in xStart...xEnd {
                    let xd = Double(x)
                    while k < crossings.count && crossings[k] <= xd {
                        inside.toggle()
                        k += 1
                    }
                    // Distance to the outline, capped at R (edges farther than R in y cannot matter).
                    var best = R * R
                    for e in near {
                        let ax = ex0[e], ay = ey0[e]
                        let dx = ex1[e] - ax, dy = ey1[e] - ay
                        let px = xd - ax, py = yd - ay
                        let len2 = dx * dx + dy * dy
                        var t = len2 > 0 ? (px * dx + py * dy) / len2 : 0
                        t = t < 0 ? 0 : (t > 1 ? 1 : t)
                        let qx = px - t * dx, qy = py - t * dy
                        let d2 = qx * qx + qy * qy
                        if d2 < best { best = d2 }
                    }
                    let d = best.squareRoot()
                    if !inside && d > 0.5 { continue }
                    let dEff = min(d + 0.75, R)
                    let v = R - dEff
                    let along = ((xd - proximal.x) * axis.x + (yd - proximal.y) * axis.y) / axisLength2
                    let slot = Int((max(0, min(1, along)) * Double(stations)).rounded())
                    let rInner = R * (1 - cortexAt[slot])
                    let med = medullaAt[slot]
                    let outer = 2 * (R * R - v * v).squareRoot()
                    let inner = v < rInner ? 2 * (rInner * rInner - v * v).squareRoot() : 0
                    // Trabeculae: a coarse and a fine octave.
                    let px = Float(xd - proximal.x), py = Float(yd - proximal.y)
                    let fu = (px * ax + py * ay) * stretch, fv = px * -ay + py * ax
                    let tex = 0.68 + 0.42 * texture.sample(fu, fv) + 0.22 * texture.sample(fu * 2.7 + 311, fv * 2.7 + 97)
                    let value = mu * unit * (Float(outer - inner) + med * tex * Float(inner))
                    out[row + x] = max(value, 1e-4)
                }
            }
        }
        return BoneLayer(label: label, originX: minX, originY: minY, width: w, height: h, density: density)
    }

    /// Soft-tissue thickness (template pixels) on a grid `step` times coarser than the image.
    static func softTissue(_ parts: [SoftPart], size: Int, step: Int, pixelScale: Double) -> (grid: [Float], side: Int) {
        let side = (size + step - 1) / step + 1
        var grid = [Float](repeating: 0, count: side * side)
        let inv = 1 / pixelScale
        grid.withUnsafeMutableBufferPointer { g in
            for part in parts {
                switch part {
                case let .capsule(a, b, ra, rb, density):
                    let r = max(ra, rb)
                    let x0 = max(0, Int(((min(a.x, b.x) - r) / Double(step)).rounded(.down)))
                    let x1 = min(side - 1, Int(((max(a.x, b.x) + r) / Double(step)).rounded(.up)))
                    let y0 = max(0, Int(((min(a.y, b.y) - r) / Double(step)).rounded(.down)))
                    let y1 = min(side - 1, Int(((max(a.y, b.y) + r) / Double(step)).rounded(.up)))
                    guard x0 <= x1, y0 <= y1 else { continue }
                    let d = b - a
                    let len2 = max(d.dot(d), 1e-9)
                    for gy in y0...y1 {
                        for gx in x0...x1 {
                            let p = Vec2(Double(gx * step), Double(gy * step))
                            var t = (p - a).dot(d) / len2
                            t = max(0, min(1, t))
                            let rr = ra + (rb - ra) * t
                            let q = p - (a + d * t)
                            let dist2 = q.dot(q)
                            if dist2 < rr * rr {
                                let thick = Float(2 * (rr * rr - dist2).squareRoot() * density * inv)
                                let i = gy * side + gx
                                if thick > g[i] { g[i] = thick }
                            }
                        }
                    }
                case let .region(hull, margin, round, peak):
                    guard hull.count >= 3 else { continue }
                    let box = Box(hull)
                    let x0 = max(0, Int(((box.minX - margin) / Double(step)).rounded(.down)))
                    let x1 = min(side - 1, Int(((box.maxX + margin) / Double(step)).rounded(.up)))
                    let y0 = max(0, Int(((box.minY - margin) / Double(step)).rounded(.down)))
                    let y1 = min(side - 1, Int(((box.maxY + margin) / Double(step)).rounded(.up)))
                    guard x0 <= x1, y0 <= y1 else { continue }
                    let orientation: Double = Polygon.doubleArea(hull) > 0 ? 1 : -1
                    for gy in y0...y1 {
                        for gx in x0...x1 {
                            let p = Vec2(Double(gx * step), Double(gy * step))
                            var inside = true
                            var best = Double.infinity
                            for i in 0..<hull.count {
                                let a = hull[i], b = hull[(i + 1) % hull.count]
                                let d = b - a
                                let cross = d.x * (p.y - a.y) - d.y * (p.x - a.x)
                                if cross * orientation < 0 { inside = false }
                                let len2 = max(d.dot(d), 1e-9)
                                let t = max(0, min(1, (p - a).dot(d) / len2))
                                let q = p - (a + d * t)
                                best = min(best, q.dot(q))
                            }
                            let signed = inside ? best.squareRoot() : -best.squareRoot()
                            let e = signed + margin
                            guard e > 0 else { continue }
                            let f = 1 - min(e, round) / round
                            let thick = Float(peak * (1 - f * f).squareRoot())
                            let i = gy * side + gx
                            if thick > g[i] { g[i] = thick }
                        }
                    }
                }
            }
        }
        return (grid, side)
    }
}
