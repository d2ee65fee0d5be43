import CompetitionFormat
import Foundation

/// Checks that an annotation is fit to train on before any image is decoded:
/// the 29 labels each exactly once, polygons that are polygons and lie on the
/// image, and an anatomy that catches swapped labels (the real set has files
/// with swapped finger, carpal and radius/ulna labels).
///
/// The anatomical rules work in a frame taken from the hand itself, so they
/// hold for left and right hands and for any rotation on the film:
/// - the wrist point C is the mean centroid of the eight carpals and the hand
///   axis runs from C to the mean centroid of the 19 finger bones; both means
///   are unchanged by a swap within their group, so a swap cannot hide by
///   moving the frame;
/// - the thumb side is the side of the thumb and index metacarpals against the
///   ring and little metacarpals, measured across that axis (not image left or
///   right, and not the file's `_L`/`_R`).
/// Lengths are in units of |C → finger centroid| (the hand's size), angles in
/// degrees about C. A rule holds when the order is right at all: a swap puts a
/// bone a whole bone's width or length on the wrong side, so its value is about
/// the negative of the normal one, and a margin would only drop real hands
/// whose bones happen to lie close. Closest values over 2,000 synthetic poses
/// (the real sample's in brackets): finger runs 0.095 hand sizes (0.18), order
/// across the fingers 6.9° (13.7°), metacarpals beyond the carpals 0.20 (0.25),
/// carpal rows across 0.054 (0.060), Pisiform ulnar of Lunate 0.13 (0.14),
/// distal above proximal row 0.105 (0.113), forearm below the carpals 0.22
/// (0.30), Radius radial of Ulna 0.26 (0.28), Pisiform/Triquetrum area 0.71
/// (0.59), Capitate/next largest carpal area 1.39 (1.70). Sizes settle what
/// positions cannot: Pisiform and Triquetrum overlap on the film, and Capitate
/// and Scaphoid sit so that their swap keeps every order.
public enum AnnotationHygiene {
    /// Polygon points may lie this far outside the image (fraction of its larger side):
    /// labelling tools let outlines run a little past the film's edge.
    public static let outsideSlack = 0.02
    /// The sharpest turn allowed along a finger's chain of centroids, in degrees (the
    /// sharpest in 2,000 synthetic poses: 37° at the thumb's base, 18° elsewhere; real sample 28°).
    static let maximumTurn = 60.0

    static let rays: [[String]] = [
        ["finger-1", "finger-2", "finger-3"],
        ["finger-4", "finger-5", "finger-6", "finger-7"],
        ["finger-8", "finger-9", "finger-10", "finger-11"],
        ["finger-12", "finger-13", "finger-14", "finger-15"],
        ["finger-16", "finger-17", "finger-18", "finger-19"],
    ]
    static let rayNames = ["thumb", "index", "middle", "ring", "little"]
    /// Bones at the same level of each ray, thumb → little.
    static let levels: [(String, [String])] = [
        ("metacarpals", ["finger-3", "finger-7", "finger-11", "finger-15", "finger-19"]),
        ("proximal phalanges", ["finger-2", "finger-6", "finger-10", "finger-14", "finger-18"]),
        ("middle phalanges", ["finger-5", "finger-9", "finger-13", "finger-17"]),
        ("distal phalanges", ["finger-1", "finger-4", "finger-8", "finger-12", "finger-16"]),
    ]
    static let carpals = ["Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid", "Lunate", "Triquetrum", "Pisiform"]

    /// Every problem of the annotation for an image of `width`×`height`, one short
    /// sentence each; empty when the annotation may be trained on.
    public static func problems(_ annotation: AnnotationFile, width: Int, height: Int) -> [String] {
        // Labels first: the geometry needs each bone exactly once.
        var problems: [String] = []
        var counts = [Int](repeating: 0, count: BoneClasses.count)
        var unknown: [String] = []
        for item in annotation.annotations {
            if let k = BoneClasses.index(of: item.label) { counts[k] += 1 } else { unknown.append(item.label) }
        }
        if !unknown.isEmpty {
            problems.append("unknown label\(unknown.count > 1 ? "s" : "") \(unknown.map { "'\($0)'" }.joined(separator: ", "))")
        }
        for (k, n) in counts.enumerated() where n > 1 {
            problems.append("label '\(BoneClasses.names[k])' appears \(n) times")
        }
        let missing = counts.indices.filter { counts[$0] == 0 }.map { BoneClasses.names[$0] }
        if !missing.isEmpty {
            problems.append("label\(missing.count > 1 ? "s" : "") \(missing.map { "'\($0)'" }.joined(separator: ", ")) missing")
        }
        if !problems.isEmpty { return problems }

        // Polygons.
        var polygons = [[Point]](repeating: [], count: BoneClasses.count)
        for item in annotation.annotations { polygons[BoneClasses.index(of: item.label)!] = item.points }
        let slack = outsideSlack * Double(max(width, height))
        for (k, polygon) in polygons.enumerated() {
            let name = BoneClasses.names[k]
            guard polygon.count >= 3 else {
                problems.append("'\(name)' has \(polygon.count) point\(polygon.count == 1 ? "" : "s") (a polygon needs 3)")
                continue
            }
            if let p = polygon.first(where: { Double($0.x) < -slack || Double($0.y) < -slack
                || Double($0.x) > Double(width - 1) + slack || Double($0.y) > Double(height - 1) + slack }) {
                problems.append("'\(name)' has point [\(p.x), \(p.y)] outside the \(width)×\(height) image")
                continue
            }
            if abs(Shape.signedArea(polygon)) < 1 { problems.append("'\(name)' encloses no area") }
        }
        if !problems.isEmpty { return problems }

        return anatomyProblems(polygons.map(Shape.centroid), areas: polygons.map { abs(Shape.signedArea($0)) })
    }

    /// One anatomical rule as measured on an annotation: it holds when `value` ≥ 0.
    struct Rule: Sendable {
        /// The family of the rule ("ray", "across", …), for statistics over many hands.
        let kind: String
        /// How far the rule holds, in its family's unit (hand sizes, degrees, area ratio).
        let value: Double
        let message: String
        var holds: Bool { value >= 0 }
    }

    static func anatomyProblems(_ centre: [Vec], areas: [Double]) -> [String] {
        guard let rules = anatomyRules(centre, areas: areas) else { return ["the finger bones are not separated from the carpals"] }
        return rules.filter { !$0.holds }.map(\.message)
    }

    /// The rules on the bones' centroids and areas (in class order); nil when the hand has no axis.
    static func anatomyRules(_ centre: [Vec], areas: [Double]) -> [Rule]? {
        func c(_ name: String) -> Vec { centre[BoneClasses.index(of: name)!] }
        func area(_ name: String) -> Double { areas[BoneClasses.index(of: name)!] }
        let wrist = Vec.mean(carpals.map(c))
        let fingers = Vec.mean((1...19).map { c("finger-\($0)") })
        let size = (fingers - wrist).length
        guard size > 1 else { return nil }
        let distal = (fingers - wrist) / size
        var radial = distal.perpendicular
        if (c("finger-3") + c("finger-7") - c("finger-15") - c("finger-19")).dot(radial) < 0 { radial = radial * -1 }
        // Hand frame: u towards the fingers, v towards the thumb, in hand sizes.
        func u(_ name: String) -> Double { (c(name) - wrist).dot(distal) / size }
        func v(_ name: String) -> Double { (c(name) - wrist).dot(radial) / size }
        func reach(_ name: String) -> Double { (c(name) - wrist).length / size }
        func angle(_ name: String) -> Double { atan2(v(name), u(name)) * 180 / .pi }

        var rules: [Rule] = []
        // Each finger runs tip → metacarpal: farther from the wrist towards the tip.
        for (r, ray) in rays.enumerated() {
            for j in 0..<(ray.count - 1) {
                rules.append(Rule(kind: "ray", value: reach(ray[j]) - reach(ray[j + 1]),
                                  message: "\(ray[j]) is not farther from the wrist than \(ray[j + 1]) "
                                      + "(the \(rayNames[r]) runs \(ray.first!) tip → \(ray.last!) metacarpal)"))
            }
        }
        // Each finger is a chain: wrist → metacarpal → … → tip turns gently at each bone,
        // so a bone labelled into another finger shows up as a sharp turn.
        for (r, ray) in rays.enumerated() {
            let chain = [wrist] + ray.reversed().map(c)
            for j in 1..<(chain.count - 1) {
                let a = chain[j] - chain[j - 1], b = chain[j + 1] - chain[j]
                let turn = acos(max(-1, min(1, a.dot(b) / max(a.length * b.length, 1e-9)))) * 180 / .pi
                rules.append(Rule(kind: "turn", value: maximumTurn - turn,
                                  message: "the \(rayNames[r]) turns by \(Int(turn.rounded()))° at \(ray[ray.count - j]) "
                                      + "(wrist → \(ray.last!) … \(ray.first!) tip)"))
            }
        }
        // Fingers in order across the hand at each level, thumb → little (angles about the wrist,
        // which follow the fan of the fingers better than distances across the axis).
        for (level, names) in levels {
            for j in 0..<(names.count - 1) {
                rules.append(Rule(kind: "across", value: angle(names[j]) - angle(names[j + 1]),
                                  message: "\(names[j]) is not on the thumb side of \(names[j + 1]) (\(level) run thumb → little)"))
            }
        }
        // Metacarpals beyond the carpals.
        let farthestCarpal = carpals.max { reach($0) < reach($1) }!
        for mc in levels[0].1 {
            rules.append(Rule(kind: "metacarpal", value: reach(mc) - reach(farthestCarpal),
                              message: "\(mc) (a metacarpal) is not farther from the wrist than \(farthestCarpal)"))
        }
        // Carpal rows across the hand, thumb → little.
        for row in [["Trapezium", "Trapezoid", "Capitate", "Hamate"], ["Scaphoid", "Lunate", "Triquetrum"]] {
            for j in 0..<(row.count - 1) {
                rules.append(Rule(kind: "carpal row", value: v(row[j]) - v(row[j + 1]),
                                  message: "\(row[j]) is not on the thumb side of \(row[j + 1])"))
            }
        }
        rules.append(Rule(kind: "pisiform", value: v("Lunate") - v("Pisiform"),
                          message: "Pisiform is not on the little-finger side of Lunate"))
        // Pisiform and Triquetrum overlap on the film, so only size tells them apart:
        // the pisiform is the smaller.
        rules.append(Rule(kind: "pisiform size", value: 1 - area("Pisiform") / max(area("Triquetrum"), 1),
                          message: "Pisiform is not smaller than Triquetrum"))
        // The capitate is the largest carpal.
        let nextLargest = carpals.filter { $0 != "Capitate" }.max { area($0) < area($1) }!
        rules.append(Rule(kind: "capitate size", value: area("Capitate") / max(area(nextLargest), 1) - 1,
                          message: "Capitate is not larger than \(nextLargest) (the capitate is the largest carpal)"))
        // The distal carpal row lies nearer the metacarpals than the proximal row.
        for (d, p) in [("Trapezium", "Scaphoid"), ("Trapezoid", "Scaphoid"), ("Capitate", "Lunate"), ("Hamate", "Triquetrum")] {
            rules.append(Rule(kind: "rows", value: u(d) - u(p),
                              message: "\(d) (distal carpal row) is not nearer the fingers than \(p) (proximal row)"))
        }
        // Forearm bones below the proximal carpal row.
        let proximalRow = ["Scaphoid", "Lunate", "Triquetrum"].map(u).min()!
        for bone in ["Radius", "Ulna"] {
            rules.append(Rule(kind: "forearm", value: proximalRow - u(bone),
                              message: "\(bone) is not below the proximal carpal row"))
        }
        // Radius on the thumb side of the Ulna, across the forearm's own axis (the
        // wrist may be deviated from the hand's axis).
        let forearmMid = (c("Radius") + c("Ulna")) * 0.5
        var across = (wrist - forearmMid).perpendicular
        if across.dot(radial) < 0 { across = across * -1 }
        let acrossValue = across.length > 0 ? (c("Radius") - c("Ulna")).dot(across) / across.length / size : 0
        rules.append(Rule(kind: "radius", value: acrossValue,
                          message: "Radius is not on the thumb side of Ulna"))
        return rules
    }

    /// The rules measured on an annotation whose labels and polygons are valid.
    static func anatomyRules(_ annotation: AnnotationFile) -> [Rule]? {
        var polygons = [[Point]](repeating: [], count: BoneClasses.count)
        for item in annotation.annotations {
            guard let k = BoneClasses.index(of: item.label), item.points.count >= 3 else { return nil }
            polygons[k] = item.points
        }
        guard polygons.allSatisfy({ !$0.isEmpty }) else { return nil }
        return anatomyRules(polygons.map(Shape.centroid), areas: polygons.map { abs(Shape.signedArea($0)) })
    }
}

/// A 2-D point or vector in image pixels.
struct Vec: Sendable {
    var x: Double
    var y: Double
    static func + (a: Vec, b: Vec) -> Vec { Vec(x: a.x + b.x, y: a.y + b.y) }
    static func - (a: Vec, b: Vec) -> Vec { Vec(x: a.x - b.x, y: a.y - b.y) }
    static func * (a: Vec, s: Double) -> Vec { Vec(x: a.x * s, y: a.y * s) }
    static func / (a: Vec, s: Double) -> Vec { Vec(x: a.x / s, y: a.y / s) }
    func dot(_ b: Vec) -> Double { x * b.x + y * b.y }
    var length: Double { (x * x + y * y).squareRoot() }
    var perpendicular: Vec { Vec(x: -y, y: x) }
    static func mean(_ points: [Vec]) -> Vec {
        points.reduce(Vec(x: 0, y: 0), +) / Double(max(points.count, 1))
    }
}

enum Shape {
    /// Shoelace area (positive for counter-clockwise in a y-down image… either sign is fine here).
    static func signedArea(_ polygon: [Point]) -> Double {
        var twice = 0.0
        var previous = polygon[polygon.count - 1]
        for p in polygon {
            twice += Double(previous.x) * Double(p.y) - Double(p.x) * Double(previous.y)
            previous = p
        }
        return twice / 2
    }

    /// The area centroid of a polygon (its vertices' mean when it has no area):
    /// unlike the vertex mean it does not drift towards densely drawn stretches of outline.
    static func centroid(_ polygon: [Point]) -> Vec {
        var twice = 0.0, cx = 0.0, cy = 0.0
        var previous = polygon[polygon.count - 1]
        for p in polygon {
            let cross = Double(previous.x) * Double(p.y) - Double(p.x) * Double(previous.y)
            twice += cross
            cx += (Double(previous.x) + Double(p.x)) * cross
            cy += (Double(previous.y) + Double(p.y)) * cross
            previous = p
        }
        if abs(twice) < 1e-9 {
            return Vec.mean(polygon.map { Vec(x: Double($0.x), y: Double($0.y)) })
        }
        return Vec(x: cx / (3 * twice), y: cy / (3 * twice))
    }
}
