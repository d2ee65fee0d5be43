import CompetitionFormat
import Foundation
import Testing
import TestSupport

/// Phantoms from `bonectl synth` are read by `bonectl eval` as competition
/// ground truth: their labels scored against themselves give Dice 1.0, and
/// against a prediction with one bone removed, exactly that bone's share less.
@Suite struct SynthEvalTests {
    @Test func generatedLabelsScoreOneAgainstThemselves() throws {
        let folder = TemporaryFolder("synth-eval")
        let data = folder.file("phantoms")
        let synth = try Product.run("bonectl", ["synth", "--out", data, "--count", "4", "--size", "256", "--seed", "5", "--jobs", "2"])
        #expect(synth.status == 0, "\(synth.stderr)")
        let truth = try GroundTruth.load(directory: data)
        #expect(truth.count == 4 && truth.allSatisfy { $0.width == 256 && $0.height == 256 })
        var rows: [SubmissionRow] = []
        for image in truth {
            rows += SubmissionCSV.rows(imageName: image.stem + ".png", rles: image.classRuns.map { RLE.encode(runs: $0) })
        }
        try SubmissionCSV.write(rows, to: folder.file("perfect.csv"))
        let perfect = try Product.run("bonectl", ["eval", "--pred", folder.file("perfect.csv"), "--gt", data, "--json"])
        #expect(perfect.status == 0, "\(perfect.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(perfect.stdout.utf8)) as! [String: Any]
        #expect(report["mean_dice"] as? Double == 1.0)

        // Drop the Lunate from every image: its Dice becomes 1e-4 / (|A| + 1e-4) ≈ 0, the mean 28/29.
        let lunate = BoneClasses.index(of: "Lunate")!
        let damaged = rows.enumerated().map { i, row in i % 29 == lunate ? SubmissionRow(imageName: row.imageName, className: row.className, rle: "") : row }
        try SubmissionCSV.write(damaged, to: folder.file("damaged.csv"))
        let partial = try Product.run("bonectl", ["eval", "--pred", folder.file("damaged.csv"), "--gt", data, "--json"])
        let damagedReport = try JSONSerialization.jsonObject(with: Data(partial.stdout.utf8)) as! [String: Any]
        let mean = try #require(damagedReport["mean_dice"] as? Double)
        #expect(abs(mean - 28.0 / 29.0) < 1e-6, "mean Dice \(mean)")
    }
}
