import CompetitionFormat
import Foundation
import Models
import Segmentation
import TensorEngine
import TestSupport
import Testing
@testable import Training

@Suite(.serialized) struct RetrainingUnitTests {
    static let decoder = [16, 8, 8, 8, 8]

    static func batch(_ name: String, classes: Int = 3, size: Int = 64) -> (Tensor, Tensor) {
        let count = 2 * 3 * size * size
        let x = Tensor(shape: [2, 3, size, size], values: DeterministicFill.uniform(name: "\(name).input", count: count))
        let t = Tensor(shape: [2, classes, size, size],
                       values: DeterministicFill.uniform(name: "\(name).target", count: 2 * classes * size * size).map { $0 < 0.3 ? 1 : 0 })
        return (x, t)
    }

    /// A run resumed from a checkpoint continues exactly as one that never
    /// stopped: same weights, running statistics and Adam moments after the next step.
    @Test func checkpointResumesBitForBit() throws {
        let folder = TemporaryFolder()
        let (x, t) = Self.batch("resume")
        let straight = try TrainableUnetPlusPlus.deterministic(encoder: .resnet18, decoderChannels: Self.decoder, classes: 3)
        let straightOptimizer = AdamW(parameters: straight.parameters, learningRate: 1e-3)
        try straight.trainStep(input: x, targets: t, optimizer: straightOptimizer)
        try straight.trainStep(input: x, targets: t, optimizer: straightOptimizer)
        let progress = SeedProgress(seed: 0, epochsDone: 1, optimizerSteps: 0, elapsedSeconds: 1, history: [],
                                    checkpointFile: "", checkpointSHA256: "")
        let saved = try TrainingCheckpoint.save(model: straight, optimizer: straightOptimizer, progress: progress, in: folder.path)
        #expect(saved.optimizerSteps == 2)

        let resumed = try TrainableUnetPlusPlus.deterministic(encoder: .resnet18, decoderChannels: Self.decoder, classes: 3)
        let resumedOptimizer = AdamW(parameters: resumed.parameters, learningRate: 1e-3)
        let loaded = try #require(try TrainingCheckpoint.progress(in: folder.path))
        #expect(loaded == saved)
        try TrainingCheckpoint.restore(loaded, in: folder.path, model: resumed, optimizer: resumedOptimizer)
        #expect(resumedOptimizer.step == 2)

        try straight.trainStep(input: x, targets: t, optimizer: straightOptimizer)
        try resumed.trainStep(input: x, targets: t, optimizer: resumedOptimizer)
        let a = straight.stateDict(), b = resumed.stateDict()
        #expect(a.keys.sorted() == b.keys.sorted())
        for key in a.keys { #expect(a[key]!.array == b[key]!.array, "\(key) differs after resuming") }
    }

    /// A checkpoint whose weights file no longer matches progress.json is refused, not half-loaded.
    @Test func tamperedCheckpointIsRefused() throws {
        let folder = TemporaryFolder()
        let model = try TrainableUnetPlusPlus.deterministic(encoder: .resnet18, decoderChannels: Self.decoder, classes: 3)
        let optimizer = AdamW(parameters: model.parameters)
        let progress = SeedProgress(seed: 0, epochsDone: 3, optimizerSteps: 0, elapsedSeconds: 1, history: [],
                                    checkpointFile: "", checkpointSHA256: "")
        let saved = try TrainingCheckpoint.save(model: model, optimizer: optimizer, progress: progress, in: folder.path)
        #expect(saved.checkpointFile == "epoch-003.safetensors")
        let path = "\(folder.path)/\(saved.checkpointFile)"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 1] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: TrainingError.self) { try TrainingCheckpoint.restore(saved, in: folder.path, model: model, optimizer: optimizer) }
    }

    /// ThresholdDice against a direct computation: threshold each probability
    /// plane, count, and average the competition's per-image Dice.
    @Test func thresholdDiceMatchesDirectCount() throws {
        let (logitsShape, classes) = ([3, 4, 17, 23], 4)
        let count = logitsShape.reduce(1, *)
        let logits = Tensor(shape: logitsShape, values: DeterministicFill.uniform(name: "td.logits", count: count).map { ($0 - 0.5) * 8 })
        var targetValues = DeterministicFill.uniform(name: "td.targets", count: count).map { Float($0 < 0.35 ? 1 : 0) }
        // One empty target plane and a plane the prediction never reaches: both edge cases of Dice.
        let plane = 17 * 23
        for i in 0..<plane { targetValues[(1 * classes + 2) * plane + i] = 0 }
        for i in 0..<plane { logits.storage[(2 * classes + 3) * plane + i] = -20 }
        let targets = Tensor(shape: logitsShape, values: targetValues)
        var score = ThresholdDice(classes: classes)
        score.add(logits: logits, targets: targets)
        #expect(score.images == 3)
        for (k, threshold) in ThresholdDice.grid.enumerated() {
            for c in 0..<classes {
                var total = 0.0
                for n in 0..<3 {
                    var inter = 0, predicted = 0, truth = 0
                    for i in 0..<plane {
                        let index = (n * classes + c) * plane + i
                        let p = 1 / (1 + exp(-Double(logits.storage[index])))
                        let positive = p > Double(threshold), actual = targets.storage[index] > 0.5
                        if positive { predicted += 1 }
                        if actual { truth += 1 }
                        if positive && actual { inter += 1 }
                    }
                    total += (2 * Double(inter) + 1e-4) / (Double(predicted + truth) + 1e-4)
                }
                #expect(abs(score.dice(class: c, thresholdIndex: k) - total / 3) < 1e-12, "class \(c) threshold \(threshold)")
            }
        }
        #expect(ThresholdDice.grid.contains(0.5))
        let tuned = score.tunedThresholds()
        #expect(score.meanDice(thresholds: tuned) >= score.meanDice() - 1e-12)
    }
}
