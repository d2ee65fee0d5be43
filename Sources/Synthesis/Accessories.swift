import Foundation

/// Rings, a watch, Kirschner wires, a plate with screws, nail art: dense foreign
/// bodies that appear on real films and are never labelled as bone.
enum Accessories {
    static func draw(into field: inout [Float], size: Int, hand: HandGeometry, rng: inout SplitMix64) -> [String] {
        var drawn: [String] = []
        let roll = rng.unit()
        switch roll {
        case ..<0.38:
            ring(into: &field, size: size, hand: hand, rng: &rng)
            drawn.append("ring")
        case ..<0.62:
            watch(into: &field, size: size, hand: hand, rng: &rng)
            drawn.append("watch")
        case ..<0.76:
            pins(into: &field, size: size, hand: hand, rng: &rng)
            drawn.append("pin")
        case ..<0.86:
            plate(into: &field, size: size, hand: hand, rng: &rng)
            drawn.append("plate")
        default:
            nails(into: &field, size: size, hand: hand, rng: &rng)
            drawn.append("nail art")
        }
        return drawn
    }

    /// Adds `f(u, v)` over the oriented box |u| ≤ halfU, |v| ≤ halfV around `centre`
    /// (u along `axis`, v across it); f returns attenuation per template pixel × length in template pixels.
    private static func stamp(_ field: inout [Float], size: Int, centre: Vec2, axis: Vec2, halfU: Double, halfV: Double,
                              _ f: (Double, Double) -> Double) {
        let a = axis.normalized, n = a.perpendicular
        let corners = [centre + a * halfU + n * halfV, centre + a * halfU - n * halfV,
                       centre - a * halfU + n * halfV, centre - a * halfU - n * halfV]
        let box = Box(corners)
        let x0 = max(0, Int(box.minX.rounded(.down))), x1 = min(size - 1, Int(box.maxX.rounded(.up)))
        let y0 = max(0, Int(box.minY.rounded(.down))), y1 = min(size - 1, Int(box.maxY.rounded(.up)))
        guard x0 <= x1, y0 <= y1 else { return }
        field.withUnsafeMutableBufferPointer { out in
            for y in y0...y1 {
                for x in x0...x1 {
                    let q = Vec2(Double(x), Double(y)) - centre
                    let u = q.dot(a), v = q.dot(n)
                    guard abs(u) <= halfU, abs(v) <= halfV else { continue }
                    let value = f(u, v)
                    if value > 0 { out[y * size + x] += Float(value) }
                }
            }
        }
    }

    /// A block letter of lead in a corner where there is no hand; false when no corner is free.
    static func marker(into field: inout [Float], soft: [Float], size: Int, letter: Character, pixelScale ps: Double,
                       rng: inout SplitMix64) -> Bool {
        let h = Int((rng.uniform(80, 120) * ps).rounded()), w = Int(Double(h) * 0.62)
        let margin = Int((rng.uniform(40, 110) * ps).rounded())
        guard h >= 6, w + 2 * margin < size, h + 2 * margin < size else { return false }
        var corners = [(margin, margin), (size - margin - w, margin), (margin, size - margin - h),
                       (size - margin - w, size - margin - h)]
        // Start at a random corner, keep the order after it.
        let first = rng.int(0...3)
        corners = Array(corners[first...] + corners[..<first])
        let density = rng.uniform(1.6, 2.4)
        for (x0, y0) in corners {
            let pad = max(2, margin / 2)
            var free = true
            check: for y in max(0, y0 - pad)..<min(size, y0 + h + pad) {
                for x in max(0, x0 - pad)..<min(size, x0 + w + pad) where soft[y * size + x] > 0 {
                    free = false
                    break check
                }
            }
            guard free else { continue }
            for y in y0..<(y0 + h) {
                for x in x0..<(x0 + w) {
                    let u = (Double(x - x0) + 0.5) / Double(h), v = (Double(y - y0) + 0.5) / Double(h)
                    if inLetter(letter, u, v) { field[y * size + x] += Float(density) }
                }
            }
            return true
        }
        return false
    }

    /// Block letters in a box 0.62 wide and 1 high (u right, v down).
    private static func inLetter(_ letter: Character, _ u: Double, _ v: Double) -> Bool {
        let stem = u < 0.17
        if letter == "L" { return stem || (v > 0.83 && u < 0.6) }
        // R: stem, bowl (top and middle bars joined by a round right side), diagonal leg.
        let top = v < 0.16 && u < 0.4, middle = v > 0.42 && v < 0.57 && u < 0.4
        let cu = u - 0.36, cv = v - 0.29
        let r = (cu * cu + cv * cv).squareRoot()
        let bowl = cu > 0 && r < 0.285 && r > 0.135
        // Leg from (0.22, 0.5) to (0.6, 1): distance to that segment.
        let dx = 0.38, dy = 0.5
        let t = max(0, min(1, ((u - 0.22) * dx + (v - 0.5) * dy) / (dx * dx + dy * dy)))
        let lx = u - 0.22 - t * dx, ly = v - 0.5 - t * dy
        let leg = (lx * lx + ly * ly).squareRoot() < 0.085 && v > 0.5
        return stem || top || middle || bowl || leg
    }

    private static func chord(_ r: Double, _ v: Double) -> Double { abs(v) < r ? 2 * (r * r - v * v).squareRoot() : 0 }

    /// A band seen edge-on: dense at its tangents, thin wall across the finger.
    static func ring(into field: inout [Float], size: Int, hand: HandGeometry, rng: inout SplitMix64) {
        let site = hand.ringSites[Int(rng.next() % UInt64(hand.ringSites.count))]
        let (p, d, hw) = site
        let ps = hand.pixelScale
        let centre = p + (d - p) * rng.uniform(0.22, 0.45)
        let outer = hw * rng.uniform(1.45, 1.6)
        let wall = rng.uniform(5, 11) * ps
        let halfU = rng.uniform(14, 34) * ps
        let mu = rng.uniform(0.045, 0.085) / ps
        let stone = rng.chance(0.35)
        stamp(&field, size: size, centre: centre, axis: d - p, halfU: halfU + 30 * ps, halfV: outer + 2) { u, v in
            var t = 0.0
            if abs(u) <= halfU {
                let edge = min(1, (halfU - abs(u)) / (1.5 * ps) + 0.2)
                t += (chord(outer, v) - chord(outer - wall, v)) * edge
            }
            if stone {
                // A set stone: a small dense disc on top of the band.
                let r = 26 * ps
                let dd = (u * u + v * v).squareRoot()
                if dd < r { t += 0.6 * chord(r, dd) }
            }
            return t * mu
        }
    }

    /// A wristwatch over the distal forearm: dense case, movement, crown and a link bracelet.
    static func watch(into field: inout [Float], size: Int, hand: HandGeometry, rng: inout SplitMix64) {
        let (centre0, axis, hw) = hand.wrist
        let ps = hand.pixelScale
        let centre = centre0 + axis * (rng.uniform(-60, 80) * ps) + axis.perpendicular * (rng.uniform(-40, 40) * ps)
        let a = rng.uniform(105, 140) * ps, b = rng.uniform(100, 130) * ps
        let linkPitch = rng.uniform(22, 34) * ps
        let strapHalf = rng.uniform(55, 75) * ps
        let density = rng.uniform(0.9, 1.4)
        stamp(&field, size: size, centre: centre, axis: axis, halfU: max(a, strapHalf) + 2, halfV: hw * 1.25) { u, v in
            let e = pow(abs(u) / a, 4) + pow(abs(v) / b, 4)
            if e <= 1 {
                // Case back and bezel, the movement's rings and a battery disc.
                var t = 1.0 * density
                let r = (u * u + v * v).squareRoot()
                if r < 0.72 * min(a, b) { t += 0.5 * density * (0.6 + 0.4 * sin(r / (5 * ps))) }
                if r < 0.32 * min(a, b) { t += 0.9 * density }
                if e > 0.8 { t += 1.6 * density }
                return t
            }
            // Crown on the thumb side.
            if abs(u) < 18 * ps && abs(v) > b && abs(v) < b + 28 * ps && v < 0 { return 2.4 * density }
            if abs(u) <= strapHalf && abs(v) <= hw * 1.18 {
                let phase = (v / linkPitch).truncatingRemainder(dividingBy: 1)
                let inLink = abs(phase) > 0.12
                return inLink ? 0.75 * density : 0.2 * density
            }
            return 0
        }
    }

    /// One or two Kirschner wires across a metacarpal or the distal radius.
    static func pins(into field: inout [Float], size: Int, hand: HandGeometry, rng: inout SplitMix64) {
        let site = hand.pinSites[Int(rng.next() % UInt64(hand.pinSites.count))]
        let (p, d, hw) = site
        let ps = hand.pixelScale
        let isRadius = site.0 == hand.pinSites.last!.0
        let centre = isRadius ? d + (p - d).normalized * (rng.uniform(60, 160) * ps) : p + (d - p) * rng.uniform(0.3, 0.7)
        let count = rng.chance(0.5) ? 2 : 1
        for k in 0..<count {
            let dir = (d - p).normalized.rotated(by: (rng.chance(0.5) ? 1 : -1) * rng.uniform(0.15, 0.7))
            let r = rng.uniform(3.5, 6.5) * ps
            let halfU = max(3 * hw, rng.uniform(150, 320) * ps)
            let c = centre + dir.perpendicular * (Double(k) * rng.uniform(25, 45) * ps)
            let mu = 0.32 / ps
            stamp(&field, size: size, centre: c, axis: dir, halfU: halfU, halfV: r + 1) { u, v in
                // Trocar point at one end.
                let taper = u > halfU - 6 * r ? max(0, (halfU - u) / (6 * r)) : 1
                return chord(r * taper, v) * mu
            }
        }
    }

    /// A distal-radius plate with screws across the bone.
    static func plate(into field: inout [Float], size: Int, hand: HandGeometry, rng: inout SplitMix64) {
        let (p, d, hw) = hand.pinSites.last!
        let ps = hand.pixelScale
        let axis = (d - p).normalized
        let length = rng.uniform(300, 420) * ps
        let centre = d - axis * (length * 0.5 + rng.uniform(30, 70) * ps)
        let width = rng.uniform(24, 34) * ps
        let screws = rng.int(4...6)
        let pitch = length / Double(screws + 1)
        let screwHalf = 7 * ps
        stamp(&field, size: size, centre: centre, axis: axis, halfU: length / 2, halfV: max(width, hw * 0.75)) { u, v in
            var t = 0.0
            if abs(v) <= width { t += 1.1 }
            // Screws run across the bone (seen end-on through the plate they are dense dots with a shaft).
            let k = ((u + length / 2) / pitch).rounded()
            let offset = u + length / 2 - k * pitch
            if k >= 1 && k <= Double(screws) && abs(offset) <= screwHalf {
                t += abs(v) <= width * 0.55 ? 2.4 : (abs(v) < hw * 0.75 ? 1.2 * (0.8 + 0.2 * cos(v / (3 * ps))) : 0)
            }
            return t
        }
    }

    /// Nail polish with metallic glitter over the distal phalanges.
    static func nails(into field: inout [Float], size: Int, hand: HandGeometry, rng: inout SplitMix64) {
        let ps = hand.pixelScale
        let density = rng.uniform(0.10, 0.25)
        for (p, d, hw) in hand.nailSites {
            let axis = (d - p)
            let len = axis.length
            let centre = d - axis.normalized * (len * 0.18)
            let halfU = len * 0.42, halfV = hw * 1.15
            var sparkles: [(Double, Double, Double)] = []
            for _ in 0..<rng.int(6...18) {
                sparkles.append((rng.uniform(-halfU, halfU), rng.uniform(-halfV, halfV), rng.uniform(2, 4.5) * ps))
            }
            stamp(&field, size: size, centre: centre, axis: axis, halfU: halfU, halfV: halfV) { u, v in
                let e = pow(u / halfU, 2) + pow(v / halfV, 6)
                guard e <= 1 else { return 0 }
                var t = density
                for (su, sv, r) in sparkles where abs(u - su) < r && abs(v - sv) < r {
                    t += 0.9
                }
                return t
            }
        }
    }
}
