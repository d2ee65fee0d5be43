import CompetitionFormat
import Foundation
import Testing
@testable import Training

@Suite("DataHygiene") struct DataHygieneTests {
    /// The swaps the real set is known for, each with a label that its reason must name.
    static let namedSwaps: [(String, String)] = [
        ("finger-5", "finger-6"), ("Scaphoid", "Lunate"), ("Radius", "Ulna"), ("finger-1", "finger-16"),
    ]

    @Test("the real annotation passes; its named swaps are caught",
          .enabled(if: DataFixtures.hasRealAnnotation, "../shared/data is not present"))
    func realAnnotation() throws {
        // Its Radius and Ulna are truncated wedges (the README explains): they still pass.
        let real = try DataFixtures.read(DataFixtures.realAnnotationPath)
        #expect(AnnotationHygiene.problems(real, width: 2048, height: 2048) == [])
        for (a, b) in Self.namedSwaps {
            let problems = AnnotationHygiene.problems(DataFixtures.swapping(a, b, in: real), width: 2048, height: 2048)
            #expect(!problems.isEmpty, "\(a)/\(b) swap not caught")
            #expect(problems.contains { $0.contains(a) || $0.contains(b) }, "\(a)/\(b): \(problems)")
        }
    }

    /// Rotated by any angle and mirrored (a left hand), the real hand still
    /// passes and its swaps are still caught: the rules use the hand's own frame.
    @Test(.enabled(if: DataFixtures.hasRealAnnotation, "../shared/data is not present"))
    func rotationAndSideDoNotMatter() throws {
        let real = try DataFixtures.read(DataFixtures.realAnnotationPath)
        for degrees in stride(from: 0.0, to: 360, by: 45) {
            for mirror in [false, true] {
                // Onto a 4096² canvas so that every rotation stays inside it.
                var moved = real
                let (c, s) = (cos(degrees * .pi / 180), sin(degrees * .pi / 180))
                for i in moved.annotations.indices {
                    moved.annotations[i].points = moved.annotations[i].points.map { p in
                        var x = Double(p.x) - 1024, y = Double(p.y) - 1024
                        if mirror { x = -x }
                        (x, y) = (c * x - s * y, s * x + c * y)
                        return Point(x: Int((x + 2048).rounded()), y: Int((y + 2048).rounded()))
                    }
                }
                let label = "\(Int(degrees))°\(mirror ? " mirrored" : "")"
                #expect(AnnotationHygiene.problems(moved, width: 4096, height: 4096) == [], "\(label)")
                for (a, b) in Self.namedSwaps {
                    #expect(!AnnotationHygiene.problems(DataFixtures.swapping(a, b, in: moved), width: 4096, height: 4096).isEmpty,
                            "\(label): \(a)/\(b) swap not caught")
                }
            }
        }
    }

    /// 60 phantom poses (both hands, flexed wrists, flexed fingers, rotations;
    /// 300 were checked when the rules were made):
    /// every one passes, and every one of the 406 possible swaps of two labels
    /// is caught in every pose.
    @Test func everySwapOfTwoLabelsIsCaught() {
        var missed: [String: Int] = [:]
        var failedPoses: [String] = []
        for index in 0..<60 {
            let file = DataFixtures.poseAnnotation(index: index, seed: 21)
            let problems = AnnotationHygiene.problems(file, width: 2048, height: 2048)
            if !problems.isEmpty { failedPoses.append("pose \(index): \(problems)") }
            for a in 0..<BoneClasses.count {
                for b in (a + 1)..<BoneClasses.count {
                    let (la, lb) = (BoneClasses.names[a], BoneClasses.names[b])
                    if AnnotationHygiene.problems(DataFixtures.swapping(la, lb, in: file), width: 2048, height: 2048).isEmpty {
                        missed["\(la)/\(lb)", default: 0] += 1
                    }
                }
            }
        }
        #expect(failedPoses.isEmpty, "\(failedPoses.prefix(3))")
        #expect(missed.isEmpty, "swaps not caught (pair: poses): \(missed.sorted { $0.value > $1.value }.prefix(10))")
    }

    @Test func namedSwapsGiveClearReasons() {
        let file = DataFixtures.poseAnnotation(index: 4, seed: 21)
        func reasons(_ a: String, _ b: String) -> [String] {
            AnnotationHygiene.problems(DataFixtures.swapping(a, b, in: file), width: 2048, height: 2048)
        }
        #expect(reasons("finger-5", "finger-6").contains {
            $0.hasPrefix("finger-5 is not farther from the wrist than finger-6 (the index runs finger-4 tip → finger-7 metacarpal)")
        })
        #expect(reasons("Scaphoid", "Lunate").contains("Scaphoid is not on the thumb side of Lunate"))
        #expect(reasons("Radius", "Ulna").contains("Radius is not on the thumb side of Ulna"))
        #expect(reasons("finger-1", "finger-16").contains {
            $0 == "finger-1 is not on the thumb side of finger-4 (distal phalanges run thumb → little)"
        })
        #expect(reasons("Triquetrum", "Pisiform") == ["Pisiform is not smaller than Triquetrum"])
        #expect(reasons("Capitate", "Scaphoid").contains("Capitate is not larger than Scaphoid (the capitate is the largest carpal)"))
    }

    @Test func labelFaults() {
        let good = DataFixtures.poseAnnotation(index: 0, seed: 21)
        #expect(AnnotationHygiene.problems(good, width: 2048, height: 2048) == [])

        var missing = good
        missing.annotations.removeAll { $0.label == "Hamate" || $0.label == "finger-9" }
        #expect(AnnotationHygiene.problems(missing, width: 2048, height: 2048) == ["labels 'finger-9', 'Hamate' missing"])

        var duplicate = good
        duplicate.annotations.append(good.annotations[3])
        #expect(AnnotationHygiene.problems(duplicate, width: 2048, height: 2048) == ["label 'finger-4' appears 2 times"])

        var unknown = good
        unknown.annotations.append(BoneAnnotation(id: "x", points: good.annotations[0].points, label: "Ring"))
        #expect(AnnotationHygiene.problems(unknown, width: 2048, height: 2048) == ["unknown label 'Ring'"])
    }

    @Test func polygonFaults() {
        let good = DataFixtures.poseAnnotation(index: 0, seed: 21)
        func with(_ label: String, _ points: [Point]) -> [String] {
            var file = good
            file.annotations[BoneClasses.index(of: label)!].points = points
            return AnnotationHygiene.problems(file, width: 2048, height: 2048)
        }
        #expect(with("Capitate", [Point(x: 900, y: 1300), Point(x: 950, y: 1300)]) == ["'Capitate' has 2 points (a polygon needs 3)"])
        #expect(with("Capitate", [Point(x: 900, y: 1300), Point(x: 950, y: 1300), Point(x: 1000, y: 1300)])
            == ["'Capitate' encloses no area"])
        // Coordinates of the labelling tool's 3060² space on a 2048² image.
        var points = good.annotations[BoneClasses.index(of: "Ulna")!].points
        points[0] = Point(x: 1200, y: 3000)
        #expect(with("Ulna", points) == ["'Ulna' has point [1200, 3000] outside the 2048×2048 image"])
        // A little past the edge is allowed (2 % of the side).
        points[0] = Point(x: 1200, y: 2047 + 30)
        #expect(with("Ulna", points) == [])
    }
}
