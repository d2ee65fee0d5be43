import CompetitionFormat
import Foundation
import Imaging
import Testing
import TensorEngine
@testable import Segmentation

func fixtureFolder(_ file: String = #filePath) -> URL {
    URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("Fixtures")
}

/// Fused upsample + threshold + RLE against PyTorch's
/// `sigmoid(interpolate(logits)) > 0.5` and the competition's encoder.
@Suite struct PostprocessingTests {
    func expected() throws -> [String: [String]] {
        let text = try String(contentsOf: fixtureFolder().appendingPathComponent("post_expected.txt"), encoding: .utf8)
        var out: [String: [String]] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let parts = line.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
            out[String(parts[0]), default: []].append(String(parts[2]))
        }
        return out
    }

    func agreement(_ bitmap: ClassBitmap, _ rles: [String]) throws -> (Int, Int) {
        var same = 0, total = 0
        for c in 0..<29 {
            let reference = try RLE.decode(rles[c], width: bitmap.width, height: bitmap.height)
            let ours = bitmap.mask(classIndex: c)
            for i in 0..<ours.count {
                total += 1
                if (ours[i] != 0) == (reference.pixels[i] != 0) { same += 1 }
            }
        }
        return (same, total)
    }

    @Test func singleModelMasksMatchPyTorch() throws {
        let logits = try NumPyFile.read(path: fixtureFolder().appendingPathComponent("post_a.npy").path)
        let bitmap = Postprocessing.threshold(logits, height: 97, width: 131,
                                              thresholds: [Float](repeating: Postprocessing.logitThreshold(probability: 0.5), count: 29))
        let rles = try #require(try expected()["single"])
        let (same, total) = try agreement(bitmap, rles)
        #expect(Double(same) / Double(total) >= 0.9999, "\(total - same) of \(total) pixels differ")
        // And the RLE text itself, class by class, from the one-pass run extraction.
        let ours = Postprocessing.runs(of: bitmap).map { RLE.encode(runs: $0) }
        #expect(zip(ours, rles).filter { $0 == $1 }.count >= 28)
    }

    @Test func softEnsembleOfDifferentResolutionsMatchesPyTorch() throws {
        let a = try NumPyFile.read(path: fixtureFolder().appendingPathComponent("post_a.npy").path)
        let b = try NumPyFile.read(path: fixtureFolder().appendingPathComponent("post_b.npy").path)
        let combined = Ensemble.meanLogits([a, b])
        #expect(combined.shape == [1, 29, 24, 24])
        let bitmap = Postprocessing.threshold(combined, height: 97, width: 131,
                                              thresholds: [Float](repeating: 0, count: 29))
        let (same, total) = try agreement(bitmap, try #require(try expected()["soft"]))
        #expect(Double(same) / Double(total) >= 0.9999, "\(total - same) of \(total) pixels differ")
    }

    @Test func runsFromBitmapEqualTheReferenceEncoderPerClass() {
        var bitmap = ClassBitmap(width: 7, height: 5, classCount: 3)
        let u = DeterministicFill.uniform(name: "runs", count: 35 * 3)
        for i in 0..<35 { for c in 0..<3 where u[i * 3 + c] > 0.5 { bitmap.bits[i] |= 1 << UInt32(c) } }
        bitmap.bits[0] |= 1   // first pixel
        bitmap.bits[34] |= 4  // last pixel
        let runs = Postprocessing.runs(of: bitmap)
        for c in 0..<3 {
            let mask = bitmap.mask(classIndex: c)
            let reference = mask.withUnsafeBufferPointer { RLE.encode(pixels: $0) }
            #expect(RLE.encode(runs: runs[c]) == reference, "class \(c)")
        }
        #expect(Postprocessing.runs(of: ClassBitmap(width: 4, height: 4, classCount: 2)) == [[], []])
    }

    @Test func voteKeepsPixelsWithEnoughMembers() {
        let n = 5
        let members = (0..<n).map { m -> ClassBitmap in
            let u = DeterministicFill.uniform(name: "vote.\(m)", count: 64 * 29)
            var bits = [UInt32](repeating: 0, count: 64)
            for i in 0..<64 { for c in 0..<29 where u[i * 29 + c] > 0.5 { bits[i] |= 1 << UInt32(c) } }
            return ClassBitmap(width: 8, height: 8, classCount: 29, bits: bits)
        }
        for k in 0...n + 1 {
            let voted = Postprocessing.vote(members, minVotes: k)
            for i in 0..<64 {
                for c in 0..<29 {
                    let votes = members.filter { $0.bits[i] & (1 << UInt32(c)) != 0 }.count
                    #expect((voted.bits[i] & (1 << UInt32(c)) != 0) == (votes >= k), "k=\(k) pixel \(i) class \(c)")
                }
            }
        }
    }

    @Test func logitThresholdIsTheSigmoidsInverse() {
        #expect(Postprocessing.logitThreshold(probability: 0.5) == 0)
        for t: Float in [0.1, 0.3, 0.7, 0.9] {
            let x = Postprocessing.logitThreshold(probability: t)
            #expect(abs(1 / (1 + exp(-x)) - t) < 1e-6)
        }
    }
}
