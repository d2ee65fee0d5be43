import CompetitionFormat
import Foundation
import Models
import Segmentation
import SystemIO
import TensorEngine

/// Trains one member of the ensemble: epochs of augmented batches, AdamW under
/// warm-up + cosine, validation Dice after every epoch, a checkpoint after
/// every epoch (resumed from when the folder holds one).
final class SeedTrainer {
    let options: RetrainOptions
    let seed: Int
    let directory: String
    let model: TrainableUnetPlusPlus
    let optimizer: AdamW
    let pool: ComputePool

    init(retrainer: Retrainer, seed: Int, directory: String, startWeights: [String: Tensor]?) throws {
        options = retrainer.options
        self.seed = seed
        self.directory = directory
        pool = retrainer.pool
        guard let encoder = TrainableUnetPlusPlus.Encoder(rawValue: options.encoder.rawValue) else {
            throw TrainingError("--encoder \(options.encoder.rawValue) cannot be trained")
        }
        if let startWeights {
            model = try TrainableUnetPlusPlus(encoder: encoder, encoderDepth: options.encoderDepth,
                                              decoderChannels: options.decoderChannels, classes: BoneClasses.count,
                                              weights: startWeights)
        } else {
            model = try TrainableUnetPlusPlus.initialized(encoder: encoder, encoderDepth: options.encoderDepth,
                                                          decoderChannels: options.decoderChannels,
                                                          classes: BoneClasses.count, seed: UInt64(seed))
            if let prior = options.headBiasPrior, let bias = model.parameters.first(where: { $0.name == "segmentation_head.0.bias" }) {
                // Each bone covers ~1 % of a film: starting the head at that prior logit
                // (as RetinaNet does for rare classes) skips the first phase of training,
                // in which BCE only pushes all 29 planes towards background.
                bias.value.fill(Float(log(prior / (1 - prior))))
            }
        }
        optimizer = AdamW(parameters: model.parameters, learningRate: options.peakLearningRate)
    }

    /// Warm-up over the first epoch (a tenth of the run when it is shorter than
    /// four epochs), then cosine down to 1 % of the peak at the last step.
    func schedule(epochs: Int?, stepsPerEpoch: Int) -> LearningRateSchedule {
        let total = (epochs ?? Int.max / (2 * stepsPerEpoch)) * stepsPerEpoch
        let warmup = (options.epochs.map { $0 < 4 } ?? false) ? max(1, total / 10) : stepsPerEpoch
        return .warmupCosine(base: options.peakLearningRate, warmupSteps: warmup, totalSteps: total,
                             minimum: options.peakLearningRate / 100)
    }

    func train(train: [LabelledImage], validation: [LabelledImage], record: inout Retrainer.RunRecord, recordPath: String,
               seedsLeft: Int, budgetLeft: Double?, events: (RetrainEvent) -> Void, shouldStop: () -> Bool,
               problems: inout [DataProblem]) throws -> SeedProgress {
        var progress = try TrainingCheckpoint.progress(in: directory)
            ?? SeedProgress(seed: seed, epochsDone: 0, optimizerSteps: 0, elapsedSeconds: 0, history: [],
                            checkpointFile: "", checkpointSHA256: "")
        if progress.epochsDone > 0 {
            try TrainingCheckpoint.restore(progress, in: directory, model: model, optimizer: optimizer)
            events(.resumed(seed: seed, epochsDone: progress.epochsDone))
        }
        let stepsPerEpoch = (train.count + options.batchSize - 1) / options.batchSize
        while record.epochs.map({ progress.epochsDone < $0 }) ?? true {
            let epochStart = ContinuousClock.now
            let schedule = schedule(epochs: record.epochs, stepsPerEpoch: stepsPerEpoch)
            // The loader's seed mixes the member's seed, so members see different augmentations and orders.
            let loader = BatchLoader(images: train, size: options.size, batchSize: options.batchSize,
                                     augmentation: options.augmentation, seed: UInt64(seed) &* 0x9E37_79B9 &+ options.splitSeed,
                                     epoch: progress.epochsDone, shuffle: true, normalization: options.normalization)
            var lossSum = 0.0, seen = 0, step = 0
            while let batch = loader.next() {
                if shouldStop() { throw RetrainInterrupted() }
                schedule.apply(to: optimizer)
                let result = try model.trainStep(input: batch.input, targets: batch.target, optimizer: optimizer,
                                                 maxGradientNorm: options.maxGradientNorm)
                lossSum += result.loss * Double(batch.names.count)
                seen += batch.names.count
                step += 1
                let perStep = (ContinuousClock.now - epochStart).seconds / Double(step)
                let eta = record.epochs.map { epochs -> Double in
                    let stepsLeft = (epochs - progress.epochsDone - 1) * stepsPerEpoch + (stepsPerEpoch - step)
                        + (seedsLeft - 1) * epochs * stepsPerEpoch
                    return Double(stepsLeft) * perStep
                }
                events(.step(seed: seed, epoch: progress.epochsDone + 1, epochs: record.epochs, step: step, steps: stepsPerEpoch,
                             loss: lossSum / Double(seen), etaSeconds: eta))
            }
            for problem in loader.problems where !problems.contains(problem) {
                problems.append(problem)
                events(.problem(problem))
            }
            let dice = try validationDice(validation, problems: &problems, events: events, shouldStop: shouldStop)
            let seconds = (ContinuousClock.now - epochStart).seconds
            progress.epochsDone += 1
            progress.elapsedSeconds += seconds
            let entry = SeedProgress.EpochRecord(epoch: progress.epochsDone, meanLoss: seen > 0 ? lossSum / Double(seen) : .nan,
                                                 validationDice: dice, elapsedSeconds: progress.elapsedSeconds)
            progress.history.append(entry)
            if record.epochs == nil {
                // Under a budget the plan is fixed from the first epoch's time: what is
                // left, less a tenth for the final evaluation, shared by the seeds left.
                let share = max(0, (budgetLeft ?? 0) * 0.9) / Double(seedsLeft)
                record.epochs = max(1, Int(share / seconds))
                try AtomicFile.write(try ManifestDirectory.encode(record), to: recordPath)
            }
            progress = try TrainingCheckpoint.save(model: model, optimizer: optimizer, progress: progress, in: directory)
            events(.epoch(seed: seed, record: entry, epochs: record.epochs!))
        }
        return progress
    }

    /// This member's mean Dice on the validation split at the training size (threshold 0.5),
    /// with the weights as they would be deployed (BatchNorm folded, inference engine).
    func validationDice(_ images: [LabelledImage], problems: inout [DataProblem], events: (RetrainEvent) -> Void,
                        shouldStop: () -> Bool) throws -> Double {
        let network = try SegmentationModel(encoder: options.encoder, encoderDepth: options.encoderDepth,
                                            decoderChannels: options.decoderChannels,
                                            classes: BoneClasses.count,
                                            weights: StateDict(model.stateDict(), source: "seed \(seed)"))
        var score = ThresholdDice(classes: BoneClasses.count)
        let loader = BatchLoader(images: images, size: options.size, batchSize: options.batchSize, augmentation: .none,
                                 seed: 0, epoch: 0, shuffle: false, normalization: options.normalization)
        while let batch = loader.next() {
            if shouldStop() { throw RetrainInterrupted() }
            score.add(logits: try network.forward(batch.input), targets: batch.target, pool: pool)
        }
        for problem in loader.problems where !problems.contains(problem) {
            problems.append(problem)
            events(.problem(problem))
        }
        return score.meanDice()
    }

    /// The trained state_dict (SMP keys) as safetensors; returns the path.
    func exportWeights(to path: String, as storage: SafeTensors.StorageType) throws -> String {
        try AtomicFile.write(SafeTensors.encode(model.stateDict(), as: storage), to: path)
        return path
    }
}
