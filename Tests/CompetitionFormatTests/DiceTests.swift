import Foundation
import Testing
@testable import CompetitionFormat

@Suite struct DiceTests {
    @Test func formulaAndEmptyMasks() {
        #expect(Dice.score([], []) == 1)
        #expect(abs(Dice.score([Run(start: 0, length: 10)], []) - 1e-4 / (10 + 1e-4)) < 1e-15)
        #expect(abs(Dice.score([Run(start: 0, length: 10)], [Run(start: 5, length: 10)]) - (10 + 1e-4) / (20 + 1e-4)) < 1e-15)
    }

    @Test func runDiceEqualsPixelDice() {
        var g = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let n = Int.random(in: 1...300, using: &g)
            let pa = Double.random(in: 0...1, using: &g), pb = Double.random(in: 0...1, using: &g)
            let a = BinaryMask(width: n, height: 1, pixels: (0..<n).map { _ in Double.random(in: 0..<1, using: &g) < pa ? 1 : 0 })
            let b = BinaryMask(width: n, height: 1, pixels: (0..<n).map { _ in Double.random(in: 0..<1, using: &g) < pb ? 1 : 0 })
            #expect(Dice.score(RLE.runs(of: a), RLE.runs(of: b)) == Dice.score(a, b))
        }
    }

    static var expected: [String: Any] { try! Support.json("eval/expected.json") as! [String: Any] }

    /// The committed prediction against the committed ground truth gives the
    /// numpy Dice (images from PNG headers, one from --size).
    @Test func evaluationMatchesNumpy() throws {
        let pred = Support.fixture("eval/pred.csv")
        let report = try Evaluation.evaluate(rows: try SubmissionCSV.read(path: pred), predictionPath: pred,
                                             groundTruth: Support.fixture("eval/gt"), defaultSize: Self.expected["size"] as! Int)
        try Self.check(report)
    }

    static func check(_ report: DiceReport) throws {
        let perClass = expected["per_class"] as! [String: Double]
        #expect(report.images.count == expected["images"] as! Int)
        for (name, value) in zip(BoneClasses.names, report.perClass) {
            #expect(abs(value - perClass[name]!) < 1e-12, "\(name): \(value) vs \(perClass[name]!)")
        }
        #expect(abs(report.mean - (expected["mean_dice"] as! Double)) < 1e-12)
        // Not every class is perfect: the test would notice a scorer that returns 1.
        #expect(report.perClass.contains { $0 < 0.9 })
    }

    @Test func groundTruthSizesComeFromPNGHeadersElseSize() throws {
        let images = try GroundTruth.load(directory: Support.fixture("eval/gt"), defaultSize: 64)
        #expect(images.map(\.stem) == ["image_p", "image_q", "image_r"])
        #expect(images.map(\.width) == [60, 70, 64])
        #expect(images.map(\.height) == [50, 45, 64])
        #expect(images[0].imagePath != nil && images[2].imagePath == nil)
    }

    /// JSON files directly in a folder, PNGs beside them, give the same result.
    @Test func flatLayoutGivesTheSameScores() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        for (folder, stem, png) in [("ID001", "image_p", true), ("ID001", "image_q", true), ("ID002", "image_r", false)] {
            try fm.copyItem(atPath: Support.fixture("eval/gt/outputs_json/\(folder)/\(stem).json"), toPath: dir + "/\(stem).json")
            if png { try fm.copyItem(atPath: Support.fixture("eval/gt/DCM/\(folder)/\(stem).png"), toPath: dir + "/\(stem).png") }
        }
        let pred = Support.fixture("eval/pred.csv")
        let report = try Evaluation.evaluate(rows: try SubmissionCSV.read(path: pred), predictionPath: pred,
                                             groundTruth: dir, defaultSize: 64)
        try Self.check(report)
    }

    @Test func missingClassInGroundTruthIsAnErrorNamingFileAndClass() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = Support.fixture("eval/gt/outputs_json/ID001/image_q.json")
        var annotation = try AnnotationFile.read(path: source)
        annotation.annotations.removeAll { $0.label == "Lunate" }
        let path = dir + "/image_q.json"
        try JSONEncoder().encode(annotation).write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try GroundTruth.load(directory: dir)
        } throws: { error in
            "\(error)" == "\(path): class 'Lunate' is missing"
        }
    }

    @Test func predictionThatMissesAnImageOrClassIsAnError() throws {
        let pred = Support.fixture("eval/pred.csv")
        let rows = try SubmissionCSV.read(path: pred)
        let gt = Support.fixture("eval/gt")
        // A class row gone.
        #expect {
            _ = try Evaluation.evaluate(rows: rows.filter { !($0.imageName == "image_q.png" && $0.className == "Radius") },
                                        predictionPath: "p.csv", groundTruth: gt, defaultSize: 64)
        } throws: { "\($0)" == "p.csv: no row for (image_q.png, Radius)" }
        // A whole image gone.
        #expect {
            _ = try Evaluation.evaluate(rows: rows.filter { $0.imageName != "image_r.png" },
                                        predictionPath: "p.csv", groundTruth: gt, defaultSize: 64)
        } throws: { "\($0)".hasPrefix("p.csv: no rows for image 'image_r'") }
        // An image nobody annotated.
        var extra = rows
        extra.append(SubmissionRow(imageName: "stranger.png", className: "finger-1", rle: "", line: 99))
        #expect {
            _ = try Evaluation.evaluate(rows: extra, predictionPath: "p.csv", groundTruth: gt, defaultSize: 64)
        } throws: { "\($0)".hasPrefix("p.csv:99: image 'stranger.png' has no annotation") }
        // An RLE past the image's last pixel (image_p is 60x50 = 3000 pixels).
        var bad = rows
        let i = bad.firstIndex { $0.imageName == "image_p.png" && $0.className == "Ulna" }!
        bad[i].rle = "2990 20"
        #expect {
            _ = try Evaluation.evaluate(rows: bad, predictionPath: "p.csv", groundTruth: gt, defaultSize: 64)
        } throws: { "\($0)".contains("bad RLE for (image_p.png, Ulna) on a 60x50 image") }
    }
}
