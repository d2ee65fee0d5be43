import CompetitionFormat
import Foundation

/// One bone placed in the image: its outline (image pixels, before rounding) and
/// what the renderer needs to give it density.
struct PlacedBone: Sendable {
    let label: String
    /// Outline in image pixels, clipped to the image.
    var outline: [Vec2]
    /// Half-width of the shaft in image pixels: the radius of the cross-section the density model assumes.
    let halfWidth: Double
    let cortex: Double
    let medulla: Double
    /// A long bone (phalanx, metacarpal, radius, ulna) rather than a carpal.
    let tubular: Bool
    /// Axis in image pixels, for accessories.
    let proximal: Vec2
    let distal: Vec2
}

/// A piece of soft tissue: a tapered capsule (finger segment) or a rounded convex region (palm, forearm).
enum SoftPart: Sendable {
    /// Segment a→b with radii ra, rb; projected thickness of a cylinder, times `density`.
    case capsule(a: Vec2, b: Vec2, ra: Double, rb: Double, density: Double)
    /// Convex polygon grown by `margin`; thickness rises over `round` pixels to `peak`.
    case region(hull: [Vec2], margin: Double, round: Double, peak: Double)
}

/// Everything the renderer needs about one hand, in image pixels.
struct HandGeometry: Sendable {
    var bones: [PlacedBone]
    var soft: [SoftPart]
    /// Pixels per template pixel (template = 2048-px right hand).
    var pixelScale: Double
    /// Finger segments (proximal phalanges) where a ring could sit: (proximal end, distal end, half-width).
    var ringSites: [(Vec2, Vec2, Double)]
    /// Distal phalanges: (proximal end, distal end, half-width), for nail art.
    var nailSites: [(Vec2, Vec2, Double)]
    /// The distal forearm: a point on the axis, the axis direction (towards the hand), and the forearm half-width.
    var wrist: (Vec2, Vec2, Double)
    /// Metacarpal shafts and radius: where pins and plates go.
    var pinSites: [(Vec2, Vec2, Double)]
    var isLeft: Bool
    var wristFlexed: Bool
}

/// Pose parameters of one hand; drawn from a seeded generator.
struct HandPose: Sendable {
    var isLeft: Bool
    var scale: Double
    var rotation: Double
    var spread: Double
    var thumbAbduction: Double
    /// Per ray (thumb … little): 0 straight … 1 strongly flexed (foreshortened in PA).
    var fingerFlex: [Double]
    /// Per ray small random joint angles (radians), one per phalanx.
    var jointJitter: [[Double]]
    var wristDeviation: Double
    var wristForeshortening: Double
    var wristFlexed: Bool
    /// Per bone length and width factors (patient anatomy).
    var lengthFactor: [String: Double]
    var widthFactor: [String: Double]
    /// Where the wrist pivot lands, as a fraction of the free range (0…1) in x and y.
    var placeX: Double
    var placeY: Double

    static func random(_ rng: inout SplitMix64, isLeft: Bool, patientScale: Double, flexedFraction: Double) -> HandPose {
        let wristFlexed = rng.chance(flexedFraction)
        let fingersFlexed = rng.chance(0.15)
        var flex = [Double]()
        for ray in 0..<5 {
            var f = abs(rng.normal(0, 0.06))
            if fingersFlexed, ray > 0, rng.chance(0.6) { f = rng.uniform(0.25, 0.85) }
            flex.append(f)
        }
        var jitter = [[Double]]()
        for ray in 0..<5 {
            jitter.append((0..<(ray == 0 ? 2 : 3)).map { _ in rng.normal(0, 0.035) })
        }
        var lengthFactor = [String: Double](), widthFactor = [String: Double]()
        for name in HandTemplate.byLabel.keys.sorted() {
            lengthFactor[name] = rng.normal(1, 0.025)
            widthFactor[name] = rng.normal(1, 0.04)
        }
        let deviation: Double
        if wristFlexed {
            deviation = (rng.chance(0.5) ? 1 : -1) * rng.uniform(14, 32) * .pi / 180
        } else {
            deviation = rng.normal(0, 3.5) * .pi / 180
        }
        return HandPose(
            isLeft: isLeft,
            scale: patientScale * rng.normal(1, 0.04),
            rotation: rng.normal(0, 5.5, clamp: 2.5) * .pi / 180,
            spread: rng.normal(0.02, 0.07, clamp: 2.2),
            thumbAbduction: rng.normal(0, 0.10, clamp: 2.2),
            fingerFlex: flex, jointJitter: jitter,
            wristDeviation: deviation,
            wristForeshortening: wristFlexed ? rng.uniform(0.82, 0.96) : 1,
            wristFlexed: wristFlexed,
            lengthFactor: lengthFactor, widthFactor: widthFactor,
            placeX: rng.uniform(0.15, 0.85), placeY: rng.uniform(0.1, 0.9))
    }
}

private struct TemplateBone {
    var template: BoneTemplate
    var proximal: Vec2
    var distal: Vec2
    var widthScale: Double
}

enum HandBuilder {
    /// Poses the template, places it in a `size`×`size` image and returns outlines in image pixels.
    static func build(pose: HandPose, size: Int) -> HandGeometry {
        var bones: [String: TemplateBone] = [:]
        for t in HandTemplate.handBones + [HandTemplate.radius, HandTemplate.ulna] {
            bones[t.label] = TemplateBone(template: t, proximal: t.proximal, distal: t.distal,
                                          widthScale: pose.widthFactor[t.label] ?? 1)
        }
        let middleAxis = HandTemplate.byLabel["finger-11"]!.distal - HandTemplate.byLabel["finger-11"]!.proximal
        let middleAngle = atan2(middleAxis.y, middleAxis.x)

        // Fingers: metacarpals stay (the thumb's swings about its base), phalanges
        // follow as a chain from the metacarpal head, spread about the MCP joint and
        // foreshortened by flexion.
        for (ray, names) in HandTemplate.rays.enumerated() {
            let mcName = names[0]
            var mc = bones[mcName]!
            let mcAxis = mc.template.distal - mc.template.proximal
            var mcLength = mcAxis.length * (pose.lengthFactor[mcName] ?? 1)
            var turn = 0.0
            if ray == 0 {
                turn = -pose.thumbAbduction
                mcLength *= 1 - 0.25 * pose.fingerFlex[0]
            } else {
                let angle = atan2(mcAxis.y, mcAxis.x)
                let side = angle < middleAngle - 0.02 ? -1.0 : (angle > middleAngle + 0.02 ? 1.0 : 0.0)
                turn = pose.spread * side * (ray == 4 ? 1.6 : 1.0) * 0.8
            }
            mc.distal = mc.proximal + mcAxis.normalized.rotated(by: ray == 0 ? turn : turn * 0.15) * mcLength
            bones[mcName] = mc
            var previousTemplateDistal = mc.template.distal
            var previousDistal = mc.distal
            var cumulative = turn
            let flex = pose.fingerFlex[ray]
            for (j, name) in names.dropFirst().enumerated() {
                var b = bones[name]!
                cumulative += pose.jointJitter[ray][j]
                let gap = b.template.proximal - previousTemplateDistal
                let axis = b.template.distal - b.template.proximal
                let length = axis.length * (pose.lengthFactor[name] ?? 1)
                // Flexed phalanges shorten in projection and slide over their neighbour.
                let foreshorten = [0.30, 0.55, 0.45][min(j, 2)]
                let factor = max(0.35, 1 - foreshorten * flex)
                let overlap = flex * 0.18 * length
                let dir = axis.normalized.rotated(by: cumulative)
                // Keep a joint space along the axis (the sample's hand-drawn outlines often touch).
                var g = gap.rotated(by: cumulative)
                let along = g.dot(dir)
                if along < 9 { g = g + dir * (9 - along) }
                b.proximal = previousDistal + g - dir * overlap
                b.distal = b.proximal + dir * (length * factor)
                bones[name] = b
                previousTemplateDistal = b.template.distal
                previousDistal = b.distal
            }
        }

        // Wrist: the whole hand turns (and, flexed, foreshortens) about the wrist relative to the forearm.
        let pivot = HandTemplate.wristPivot
        func wristMove(_ p: Vec2) -> Vec2 {
            var q = p - pivot
            q.y *= pose.wristForeshortening
            return q.rotated(by: pose.wristDeviation) + pivot
        }
        for name in bones.keys where name != "Radius" && name != "Ulna" {
            bones[name]!.proximal = wristMove(bones[name]!.proximal)
            bones[name]!.distal = wristMove(bones[name]!.distal)
        }

        // Outlines in the template frame.
        var outlines: [String: [Vec2]] = [:]
        for (name, b) in bones { outlines[name] = outline(b) }

        // Soft tissue in the template frame.
        var soft: [SoftPart] = []
        var handPoints: [Vec2] = []
        for names in HandTemplate.rays { handPoints += outlines[names[0]]! }
        for c in HandTemplate.carpals { handPoints += outlines[c]! }
        // The palm reaches down over the distal ends of radius and ulna, joining the forearm.
        var wristPoints: [Vec2] = []
        for name in ["Radius", "Ulna"] {
            let b = bones[name]!
            let axis = (b.distal - b.proximal).normalized
            for p in outlines[name]! where (p - b.distal).dot(axis) > -140 { wristPoints.append(p) }
        }
        soft.append(.region(hull: Polygon.convexHull(handPoints + wristPoints), margin: 55, round: 120, peak: 165))
        for names in HandTemplate.rays {
            // From the metacarpal head to the finger pad beyond the distal phalanx.
            let mc = bones[names[0]]!
            var a = mc.distal + (mc.proximal - mc.distal) * 0.35
            var ra = mc.template.width * mc.widthScale * 0.85
            for (j, name) in names.dropFirst().enumerated() {
                let b = bones[name]!
                let w = b.template.width * b.widthScale
                let isTip = j == names.count - 2
                let end = isTip ? b.distal + (b.distal - b.proximal).normalized * (w * 0.06) : b.distal
                let rb = isTip ? w * 0.70 : w * 0.80
                soft.append(.capsule(a: a, b: end, ra: ra, rb: rb, density: 0.95))
                a = end
                ra = rb
            }
        }
        let forearm = outlines["Radius"]! + outlines["Ulna"]!
        soft.append(.region(hull: Polygon.convexHull(forearm), margin: 78, round: 260, peak: 270))

        // Place in the image: scale to the image size, rotate, mirror a left hand, and
        // shift so every hand bone stays inside with a margin while the forearm leaves the bottom.
        var pixelScale = pose.scale * Double(size) / 2048
        var transform = Similarity(origin: pivot, scale: pixelScale, angle: pose.rotation, mirrorX: pose.isLeft,
                                   offset: Vec2(0, 0))
        var handOnly: [Vec2] = []
        for (name, o) in outlines where name != "Radius" && name != "Ulna" { handOnly += o }
        // Every hand bone and the fingertips' soft tissue stay inside with a margin and the
        // forearm keeps room below; a hand too large for that is shrunk until it fits.
        let s = Double(size)
        for _ in 0..<12 {
            transform.scale = pixelScale
            transform.offset = Vec2(0, 0)
            let extent = Box(handOnly.map { transform.apply($0) })
            let margin = 70 * pixelScale
            let loX = margin - extent.minX, hiX = s - margin - extent.maxX
            let loY = margin - extent.minY, hiY = s - extent.maxY - 0.16 * s * pose.scale
            let fits = loX <= hiX && loY <= hiY
            transform.offset = Vec2(fits ? loX + (hiX - loX) * pose.placeX : (loX + hiX) / 2,
                                    fits ? loY + (hiY - loY) * pose.placeY : (loY + hiY) / 2)
            if fits { break }
            pixelScale *= 0.94
        }

        var placed: [PlacedBone] = []
        for name in BoneClasses.names {
            let b = bones[name]!
            let t = b.template
            let mapped = outlines[name]!.map { transform.apply($0) }
            let clipped = Polygon.clip(mapped, width: s, height: s)
            let shaft = (zip(t.sideA, t.sideB).map { $0 - $1 }.min() ?? 0.5) * t.width * b.widthScale
            let carpal = HandTemplate.carpals.contains(name)
            let half = (carpal ? t.width * b.widthScale * 0.42 : shaft * 0.5) * pixelScale
            placed.append(PlacedBone(label: name, outline: clipped, halfWidth: max(1.5, half), cortex: t.cortex,
                                     medulla: t.medulla, tubular: !carpal, proximal: transform.apply(b.proximal),
                                     distal: transform.apply(b.distal)))
        }
        var mappedSoft: [SoftPart] = []
        for part in soft {
            switch part {
            case let .capsule(a, b, ra, rb, density):
                mappedSoft.append(.capsule(a: transform.apply(a), b: transform.apply(b), ra: ra * pixelScale,
                                           rb: rb * pixelScale, density: density))
            case let .region(hull, margin, round, peak):
                mappedSoft.append(.region(hull: hull.map { transform.apply($0) }, margin: margin * pixelScale,
                                          round: round * pixelScale, peak: peak))
            }
        }
        func site(_ name: String) -> (Vec2, Vec2, Double) {
            let b = bones[name]!
            return (transform.apply(b.proximal), transform.apply(b.distal), b.template.width * b.widthScale * 0.5 * pixelScale)
        }
        let radius = bones["Radius"]!, ulna = bones["Ulna"]!
        let wristCentre = transform.apply((radius.distal + ulna.distal) * 0.5 + Vec2(0, 250))
        let towardHand = transform.apply((radius.distal + ulna.distal) * 0.5) - wristCentre
        return HandGeometry(
            bones: placed, soft: mappedSoft, pixelScale: pixelScale,
            ringSites: ["finger-14", "finger-10", "finger-6", "finger-18", "finger-2"].map(site),
            nailSites: ["finger-1", "finger-4", "finger-8", "finger-12", "finger-16"].map(site),
            wrist: (wristCentre, towardHand.normalized, 240 * pixelScale),
            pinSites: ["finger-7", "finger-11", "finger-15", "finger-19", "finger-3", "Radius"].map(site),
            isLeft: pose.isLeft, wristFlexed: pose.wristFlexed)
    }

    /// The outline of a posed bone in the template frame: side B proximal → distal,
    /// the distal cap, side A distal → proximal, the proximal cap.
    private static func outline(_ b: TemplateBone) -> [Vec2] {
        let t = b.template
        let axis = b.distal - b.proximal
        let length = max(axis.length, 1)
        let a = axis.normalized
        let n = a.perpendicular
        let width = t.width * b.widthScale
        let count = 2 * (t.stations.count - 1) + 1
        func side(_ offsets: [Double], tilt: Double) -> [Vec2] {
            let stations = t.stations.map { $0 + tilt * max(0, ($0 - 0.9) / 0.1) }
            return (0..<count).map { k in
                let f = Double(k) / Double(count - 1)
                let u = catmullRom(stations, f), v = catmullRom(offsets, f)
                return b.proximal + a * (u * length) + n * (v * width)
            }
        }
        let sideA = side(t.sideA, tilt: t.tiltA)
        let sideB = side(t.sideB, tilt: t.tiltB)
        func cap(from e1: Vec2, to e2: Vec2, outward: Vec2, depth: Double) -> [Vec2] {
            let mid = (e1 + e2) * 0.5
            let steps = 8
            return (1..<steps).map { j in
                let theta = Double.pi * Double(j) / Double(steps)
                return mid + (e1 - mid) * cos(theta) + outward * (depth * sin(theta))
            }
        }
        var out = sideB
        out += cap(from: sideB.last!, to: sideA.last!, outward: a, depth: t.distalCap * length)
        out += sideA.reversed()
        out += cap(from: sideA.first!, to: sideB.first!, outward: a * -1, depth: t.proximalCap * length)
        return out
    }
}
