import Foundation
import Testing
@testable import CompetitionFormat

@Suite struct PolygonFillTests {
    struct Vector {
        let kind: String
        let width: Int
        let height: Int
        let points: [Point]
        let rle: String
    }

    static func vectors() throws -> [Vector] {
        let list = try Support.json("polygons/vectors.json") as! [[String: Any]]
        return list.map {
            Vector(kind: $0["kind"] as! String, width: $0["width"] as! Int, height: $0["height"] as! Int,
                   points: ($0["points"] as! [[Int]]).map { Point(x: $0[0], y: $0[1]) }, rle: $0["rle"] as! String)
        }
    }

    /// Every committed case — convex, concave, self-intersecting, clipped,
    /// degenerate, bone-sized at 2048² — gives exactly cv2.fillPoly's pixels.
    @Test func matchesOpenCVExactly() throws {
        let vectors = try Self.vectors()
        var byKind = [String: Int]()
        for (i, v) in vectors.enumerated() {
            let mask = PolygonFill.mask(v.points, width: v.width, height: v.height)
            let got = RLE.encode(mask)
            if got != v.rle {
                let expected = try RLE.decode(v.rle, width: v.width, height: v.height)
                Issue.record("case \(i) (\(v.kind), \(v.width)x\(v.height)): differs from OpenCV, Dice \(Dice.score(mask, expected))")
            }
            byKind[v.kind, default: 0] += 1
        }
        #expect(byKind["convex"] ?? 0 >= 100)
        #expect(byKind["arbitrary"] ?? 0 >= 100)
        #expect(byKind["clipped"] ?? 0 >= 50)
        #expect(byKind["bone_2048"] ?? 0 >= 5)
    }

    /// The real annotation (beside the repository, not committed): every class
    /// has the area and RLE hash of cv2.fillPoly's mask.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Support.realAnnotation)))
    func matchesOpenCVOnTheRealAnnotation() throws {
        let expected = (try Support.json("polygons/real_annotation_cv2.json") as! [String: Any])["classes"] as! [String: [String: Any]]
        let annotation = try AnnotationFile.read(path: Support.realAnnotation)
        var scratch = [UInt8]()
        let runs = try GroundTruth.classRuns(annotation, path: Support.realAnnotation, width: 2048, height: 2048, scratch: &scratch)
        #expect(expected.count == BoneClasses.count)
        var exact = 0
        for (c, name) in BoneClasses.names.enumerated() {
            let want = expected[name]!
            let area = RLE.area(runs[c])
            let hash = Support.fnv1a64(RLE.encode(runs: runs[c]))
            #expect(area == want["area"] as! Int, "\(name)")
            #expect(hash == want["rle_fnv1a64"] as! String, "\(name)")
            if hash == want["rle_fnv1a64"] as! String { exact += 1 }
        }
        #expect(exact == BoneClasses.count)
    }

    @Test func boundaryPixelsAreIncluded() {
        // A right triangle: OpenCV fills its hypotenuse too.
        let mask = PolygonFill.mask([Point(x: 0, y: 0), Point(x: 4, y: 0), Point(x: 0, y: 4)], width: 6, height: 6)
        let rows = (0..<6).map { y in (0..<6).map { mask[$0, y] == 1 ? "#" : "." }.joined() }
        #expect(rows == ["#####.", "####..", "###...", "##....", "#.....", "......"])
    }

    @Test func pointsFarOutsideDoNotCrash() {
        let mask = PolygonFill.mask([Point(x: -1 << 24, y: -5), Point(x: 1 << 24, y: 3), Point(x: 10, y: 1 << 24)], width: 20, height: 10)
        #expect(mask.area > 0)
        #expect(PolygonFill.mask([], width: 4, height: 4).area == 0)
        #expect(PolygonFill.mask([Point(x: 1, y: 1)], width: 0, height: 0).pixels.isEmpty)
    }
}
