/// The competition's Dice: per image and class
/// `(2·|A∩B| + 1e-4) / (|A| + |B| + 1e-4)` (so two empty masks score 1),
/// averaged over images for each class, then over the 29 classes.
public enum Dice {
    public static let epsilon = 1e-4

    public static func score(intersection: Int, areaA: Int, areaB: Int) -> Double {
        (2 * Double(intersection) + epsilon) / (Double(areaA) + Double(areaB) + epsilon)
    }

    /// Dice of two masks given as sorted, non-overlapping runs.
    public static func score(_ a: [Run], _ b: [Run]) -> Double {
        score(intersection: intersection(a, b), areaA: RLE.area(a), areaB: RLE.area(b))
    }

    public static func score(_ a: BinaryMask, _ b: BinaryMask) -> Double {
        precondition(a.width == b.width && a.height == b.height, "masks of different sizes")
        var inter = 0, areaA = 0, areaB = 0
        for i in 0..<a.pixels.count {
            let x = a.pixels[i] != 0, y = b.pixels[i] != 0
            if x { areaA += 1 }
            if y { areaB += 1 }
            if x && y { inter += 1 }
        }
        return score(intersection: inter, areaA: areaA, areaB: areaB)
    }

    /// Pixels in both run lists (each sorted and non-overlapping).
    public static func intersection(_ a: [Run], _ b: [Run]) -> Int {
        var i = 0, j = 0, total = 0
        while i < a.count && j < b.count {
            let lo = max(a[i].start, b[j].start)
            let hi = min(a[i].end, b[j].end)
            if hi > lo { total += hi - lo }
            if a[i].end <= b[j].end { i += 1 } else { j += 1 }
        }
        return total
    }
}

/// Dice over a set of images, accumulated image by image.
public struct DiceReport: Sendable, Equatable {
    /// Per image (in the order added), the 29 class scores.
    public private(set) var images: [(name: String, scores: [Double])] = []

    public init() {}

    public static func == (a: DiceReport, b: DiceReport) -> Bool {
        a.images.count == b.images.count && zip(a.images, b.images).allSatisfy { $0.name == $1.name && $0.scores == $1.scores }
    }

    public mutating func add(image name: String, scores: [Double]) {
        precondition(scores.count == BoneClasses.count, "expected \(BoneClasses.count) class scores")
        images.append((name, scores))
    }

    /// Mean over images, per class (NaN with no images).
    public var perClass: [Double] {
        (0..<BoneClasses.count).map { c in
            images.isEmpty ? .nan : images.reduce(0.0) { $0 + $1.scores[c] } / Double(images.count)
        }
    }

    /// Mean of the per-class means: the competition's score.
    public var mean: Double {
        let classes = perClass
        return classes.reduce(0, +) / Double(classes.count)
    }
}
