import CompetitionFormat
import Foundation
import Imaging
import Models
import Segmentation
import SystemIO
import TensorEngine

/// Everything that decides what a retraining run computes. Two runs with equal
/// options on the same data (and, from the active release, the same release)
/// share a run folder, which is how a killed run resumes.
public struct RetrainOptions: Codable, Sendable, Equatable {
    public enum Start: String, Codable, Sendable { case scratch, active }

    public var dataDirectory: String
    public var seeds: Int = 3
    /// Epochs per seed; nil = as many as `budgetSeconds` allows.
    public var epochs: Int?
    /// Wall-clock budget for the whole run (all seeds and the evaluation).
    public var budgetSeconds: Double?
    public var size: Int = 512
    public var encoder: EncoderName = .resnet34
    public var encoderDepth = 5
    public var decoderChannels: [Int] = [256, 128, 64, 32, 16]
    public var start: Start = .scratch
    public var minGain: Double = 0
    public var batchSize: Int = 4
    /// Peak learning rate; nil = 5e-3 from scratch, 1e-4 from the active release.
    public var learningRate: Float?
    public var validationFraction: Double = 0.2
    public var splitSeed: UInt64 = 0
    /// Training uses `Augmentation.standard`, plus elastic deformation when set.
    public var elastic = false
    public var normalization: Normalization = .imagenet
    public var maxGradientNorm: Float = 1
    /// From scratch, the head's bias starts at logit(prior); nil keeps SMP's initialisation (bias 0).
    public var headBiasPrior: Double? = 0.01
    /// The candidate release's name (its members are NAME-s0, NAME-s1, …); nil = retrain-<start>-<run key>.
    public var releaseName: String?
    /// Members' weights stored as Float16 (half the size; the gate scores the stored weights).
    public var halfPrecisionWeights = false

    public init(dataDirectory: String) { self.dataDirectory = dataDirectory }

    var augmentation: Augmentation {
        var augmentation = Augmentation.standard
        augmentation.elastic = elastic
        return augmentation
    }

    var peakLearningRate: Float { learningRate ?? (start == .scratch ? 5e-3 : 1e-4) }
}

/// What a run reports while it works.
public enum RetrainEvent: Sendable {
    case dataset(images: Int, train: Int, validation: Int, problems: [DataProblem])
    case resumed(seed: Int, epochsDone: Int)
    case step(seed: Int, epoch: Int, epochs: Int?, step: Int, steps: Int, loss: Double, etaSeconds: Double?)
    case epoch(seed: Int, record: SeedProgress.EpochRecord, epochs: Int)
    case problem(DataProblem)
    case stage(String)
}

/// The result of a finished run: the candidate, how it compares, and what the gate decided.
public struct RetrainOutcome: Codable, Sendable {
    public var runDirectory: String
    public var candidateRelease: String
    public var members: [String]
    public var memberDice: [Double]
    /// Soft ensemble at the training size, thresholds 0.5 / tuned per class.
    public var ensembleDiceAtTrainingSize: Double
    public var tunedDiceAtTrainingSize: Double
    public var thresholds: [Float]
    /// Competition Dice at the images' own size on the validation split.
    public var candidateDice: Double
    public var championRelease: String?
    public var championDice: Double?
    public var promote: Bool
    public var reason: String
    public var epochs: Int
    public var trainImages: Int
    public var validationImages: Int
    public var skippedFiles: [String]
    public var history: [[SeedProgress.EpochRecord]]
}

public struct RetrainInterrupted: Error, CustomStringConvertible, Sendable {
    public let description = "retraining interrupted; rerun the same command to resume from the last epoch checkpoint"
}

/// One retraining run: per-seed training with epoch checkpoints, evaluation of
/// the members and their soft ensemble on the patient-grouped validation split,
/// per-class threshold tuning, the candidate release, and the gate against the
/// champion (the active release) on the same images. Activating is the caller's job.
public final class Retrainer {
    public let options: RetrainOptions
    let models: ModelStore
    let releases: ReleaseStore
    let champion: LoadedRelease?
    let runsDirectory: String
    let pool: ComputePool

    public init(options: RetrainOptions, releases: ReleaseStore, runsDirectory: String, champion: LoadedRelease?,
                pool: ComputePool = .shared) {
        self.options = options
        self.models = releases.models
        self.releases = releases
        self.champion = champion
        self.runsDirectory = runsDirectory
        self.pool = pool
    }

    struct RunRecord: Codable {
        var options: RetrainOptions
        var champion: String?
        var startedAt: String
        var train: [String]
        var validation: [String]
        /// Fixed once known: from --epochs, or measured after the first epoch under a budget.
        var epochs: Int?
    }

    public func run(events: (RetrainEvent) -> Void, shouldStop: () -> Bool) throws -> RetrainOutcome {
        let clock = ContinuousClock.now
        try validateOptions()
        let dataset = try TrainingDataset.scan(URL(fileURLWithPath: options.dataDirectory))
        let (train, validation) = dataset.split(validationFraction: options.validationFraction, seed: options.splitSeed)
        guard !train.isEmpty, !validation.isEmpty else {
            throw TrainingError("\(options.dataDirectory): \(dataset.images.count) usable image(s) from \(Set(dataset.images.map(\.patient)).count) patient(s); training and validation need at least one patient each")
        }
        events(.dataset(images: dataset.images.count, train: train.count, validation: validation.count, problems: dataset.problems))
        var problems = dataset.problems

        let startWeights = try startingWeights()
        let key = runKey(train: train, validation: validation)
        let runDirectory = "\(runsDirectory)/\(key)"
        if let name = options.releaseName, !FileManager.default.fileExists(atPath: runDirectory),
           FileManager.default.fileExists(atPath: releases.directory(of: name)) {
            throw TrainingError("\(releases.directory(of: name)): a release named '\(name)' exists; choose another --name")
        }
        try AtomicFile.makeDirectories(runDirectory)
        let recordPath = "\(runDirectory)/run.json"
        var record: RunRecord
        if let bytes = try? AtomicFile.read(recordPath), let saved = try? JSONDecoder().decode(RunRecord.self, from: Data(bytes)) {
            record = saved
        } else {
            record = RunRecord(options: options, champion: options.start == .active ? champion?.manifest.name : nil,
                               startedAt: ISO8601DateFormatter().string(from: Date()),
                               train: train.map(\.name), validation: validation.map(\.name), epochs: options.epochs)
            try AtomicFile.write(try ManifestDirectory.encode(record), to: recordPath)
        }

        // Each seed trains in its own folder; a finished seed is skipped on resume.
        var histories: [[SeedProgress.EpochRecord]] = []
        var memberWeights: [String] = []
        for seed in 0..<options.seeds {
            let seedDirectory = "\(runDirectory)/seed-\(seed)"
            let trainer = try SeedTrainer(retrainer: self, seed: seed, directory: seedDirectory,
                                          startWeights: startWeights.isEmpty ? nil : startWeights[seed % startWeights.count])
            let budgetLeft = options.budgetSeconds.map { $0 - (ContinuousClock.now - clock).seconds }
            let progress = try trainer.train(train: train, validation: validation, record: &record, recordPath: recordPath,
                                             seedsLeft: options.seeds - seed, budgetLeft: budgetLeft,
                                             events: events, shouldStop: shouldStop, problems: &problems)
            histories.append(progress.history)
            memberWeights.append(try trainer.exportWeights(to: "\(runDirectory)/member-\(seed).safetensors",
                                                          as: options.halfPrecisionWeights ? .f16 : .f32))
        }

        events(.stage("evaluating members and their soft ensemble on \(validation.count) validation images"))
        let candidateName = options.releaseName ?? "retrain-\(record.startedAt.filter(\.isNumber).prefix(12))-\(key.prefix(6))"
        var memberNames: [String] = []
        for (seed, path) in memberWeights.enumerated() {
            memberNames.append(try importMember(path, name: "\(candidateName)-s\(seed)", seed: seed, record: record))
        }
        let members = try memberNames.map { try models.load($0) }
        var memberScores = members.map { _ in ThresholdDice(classes: BoneClasses.count) }
        var ensembleScore = ThresholdDice(classes: BoneClasses.count)
        let loader = BatchLoader(images: validation, size: options.size, batchSize: options.batchSize, augmentation: .none,
                                 seed: 0, epoch: 0, shuffle: false, normalization: options.normalization)
        while let batch = loader.next() {
            if shouldStop() { throw RetrainInterrupted() }
            let outputs = try members.map { try $0.network.forward(batch.input) }
            for (index, logits) in outputs.enumerated() { memberScores[index].add(logits: logits, targets: batch.target, pool: pool) }
            ensembleScore.add(logits: Ensemble.meanLogits(outputs, pool: pool), targets: batch.target, pool: pool)
        }
        loader.problems.forEach { events(.problem($0)) }
        let thresholds = ensembleScore.tunedThresholds()

        events(.stage("comparing candidate and champion at full resolution on the validation split"))
        var metrics: [String: Double] = [
            "validation_dice_training_size": ensembleScore.meanDice(),
            "validation_dice_training_size_tuned": ensembleScore.meanDice(thresholds: thresholds),
        ]
        // Scored before it is published, so release.json carries its full-resolution Dice.
        let candidate = LoadedRelease(
            manifest: ReleaseManifest(name: candidateName, members: members.map { .init(model: $0.manifest.name, weightsSHA256: $0.manifest.weightsSHA256) },
                                      combine: .soft, thresholds: thresholds),
            members: members)
        // Both releases in one pass: each image is decoded and its polygons filled once.
        let scores = try FullResolutionDice.evaluate(releases: [candidate] + (champion.map { [$0] } ?? []), images: validation,
                                                     shouldStop: shouldStop)
        let candidateDice = try scores[0].get()
        metrics["validation_dice"] = candidateDice
        var championDice: Double?
        let reason: String
        let promote: Bool
        if let champion {
            switch scores[1] {
            case .success(let dice):
                championDice = dice
                promote = candidateDice >= dice + options.minGain
                reason = promote
                    ? String(format: "candidate %.4f ≥ champion %.4f + min gain %.4f", candidateDice, dice, options.minGain)
                    : String(format: "candidate %.4f < champion %.4f + min gain %.4f", candidateDice, dice, options.minGain)
            case .failure(let error):
                promote = true
                reason = "the champion \(champion.manifest.name) could not be evaluated (\(error)); the candidate replaces it"
            }
        } else {
            promote = true
            reason = "no active release: the first candidate is activated"
        }
        if let championDice { metrics["champion_validation_dice"] = championDice }
        if (try? releases.manifest(of: candidateName)) == nil {
            try releases.create(name: candidateName, members: memberNames, combine: .soft, thresholds: thresholds, metrics: metrics)
        }
        return RetrainOutcome(
            runDirectory: runDirectory, candidateRelease: candidateName, members: memberNames,
            memberDice: memberScores.map { $0.meanDice() }, ensembleDiceAtTrainingSize: ensembleScore.meanDice(),
            tunedDiceAtTrainingSize: ensembleScore.meanDice(thresholds: thresholds), thresholds: thresholds,
            candidateDice: candidateDice, championRelease: champion?.manifest.name, championDice: championDice,
            promote: promote, reason: reason, epochs: record.epochs ?? 0, trainImages: train.count,
            validationImages: validation.count, skippedFiles: problems.map(\.description), history: histories)
    }

    private func validateOptions() throws {
        guard options.seeds >= 1 else { throw TrainingError("--seeds must be at least 1") }
        guard SegmentationModel.encoderDepths.contains(options.encoderDepth) else {
            throw TrainingError("--encoder-depth \(options.encoderDepth) must be between 3 and 5")
        }
        guard options.decoderChannels.count == options.encoderDepth else {
            throw TrainingError("--decoder-channels needs \(options.encoderDepth) values for --encoder-depth \(options.encoderDepth), got \(options.decoderChannels.count)")
        }
        guard options.size > 0, options.size % (1 << options.encoderDepth) == 0 else {
            throw TrainingError("--size \(options.size) must be a positive multiple of \(1 << options.encoderDepth)")
        }
        guard options.batchSize >= 1 else { throw TrainingError("--batch-size must be at least 1") }
        if let epochs = options.epochs, epochs < 1 { throw TrainingError("--epochs must be at least 1") }
        if let budget = options.budgetSeconds, budget <= 0 { throw TrainingError("--budget must be positive") }
        guard options.epochs != nil || options.budgetSeconds != nil else { throw TrainingError("give --epochs or --budget") }
        guard TrainableUnetPlusPlus.Encoder(rawValue: options.encoder.rawValue) != nil else {
            throw TrainingError("--encoder \(options.encoder.rawValue) cannot be trained yet; trainable: "
                                + TrainableUnetPlusPlus.Encoder.allCases.map(\.rawValue).joined(separator: ", "))
        }
    }

    /// From the active release: each member's state_dict (seed i starts from member i mod count).
    private func startingWeights() throws -> [[String: Tensor]] {
        guard options.start == .active else { return [] }
        guard let champion else { throw TrainingError("--from-active: there is no active release to start from") }
        return try champion.members.map { member in
            let m = member.manifest
            guard m.encoder == options.encoder, m.encoderDepth == options.encoderDepth, m.decoderChannels == options.decoderChannels,
                  m.classes == BoneClasses.names else {
                throw TrainingError("--from-active: member \(m.name) of \(champion.manifest.name) is \(m.encoder.rawValue) (depth \(m.encoderDepth)) with decoder \(m.decoderChannels); "
                                    + "retrain with --encoder \(m.encoder.rawValue) --encoder-depth \(m.encoderDepth) --decoder-channels \(m.decoderChannels.map(String.init).joined(separator: ",")) or --from-scratch")
            }
            return try SafeTensors.read(path: "\(member.directory)/weights.safetensors").tensors
        }
    }

    private func runKey(train: [LabelledImage], validation: [LabelledImage]) -> String {
        var text = String(decoding: (try? ManifestDirectory.encode(options)) ?? [], as: UTF8.self)
        if options.start == .active { text += "\nstart:\(champion?.manifest.name ?? "")" }
        for image in train { text += "\nT \(image.name) \(Self.fileSize(image.imageURL.path)) \(Self.fileSize(image.annotationURL.path))" }
        for image in validation { text += "\nV \(image.name) \(Self.fileSize(image.imageURL.path)) \(Self.fileSize(image.annotationURL.path))" }
        return String(SHA256Digest.hex(Array(text.utf8)).prefix(16))
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? -1
    }

    /// Imports a member into the store, or reuses it when a resumed run already did.
    private func importMember(_ path: String, name: String, seed: Int, record: RunRecord) throws -> String {
        if let manifest = try? models.manifest(of: name) {
            guard manifest.weightsSHA256 == (try SHA256Digest.hex(ofFile: path)) else {
                throw TrainingError("model '\(name)' already exists in \(models.root) with other weights")
            }
            return name
        }
        try models.importWeights(from: path, name: name, encoder: options.encoder, encoderDepth: options.encoderDepth,
                                 decoderChannels: options.decoderChannels,
                                 classes: BoneClasses.names, inputSize: options.size, normalize: options.normalization,
                                 provenance: ["trained_by": "bonectl retrain", "seed": String(seed),
                                              "data": options.dataDirectory, "started_at": record.startedAt,
                                              "epochs": String(record.epochs ?? 0),
                                              "train_images": String(record.train.count),
                                              "validation_images": String(record.validation.count)])
        return name
    }
}

/// Competition Dice of releases on labelled images at their own size: each
/// release's masks (as the daemon makes them) against the polygons filled as
/// cv2 does. Every image is read, decoded and filled once for all releases; a
/// release that fails on an image gets that failure and is not run further.
public enum FullResolutionDice {
    public static func evaluate(releases: [LoadedRelease], images: [LabelledImage],
                                shouldStop: () -> Bool = { false }) throws -> [Result<Double, Error>] {
        let pipelines = releases.map { SegmentationPipeline(release: $0) }
        var reports = releases.map { _ in DiceReport() }
        var failures = [Error?](repeating: nil, count: releases.count)
        var scratch = [UInt8]()
        for image in images {
            if shouldStop() { throw RetrainInterrupted() }
            let bytes = try AtomicFile.read(image.imageURL.path)
            let gray = try ImageCodec.decode(bytes).grayscale()
            let annotation = try AnnotationFile.read(path: image.annotationURL.path)
            let truth = try GroundTruth.classRuns(annotation, path: image.annotationURL.path, width: gray.width,
                                                  height: gray.height, scratch: &scratch)
            for (index, pipeline) in pipelines.enumerated() where failures[index] == nil {
                do {
                    var timings: [String: Double] = [:]
                    let predicted = Postprocessing.runs(of: try pipeline.masks(for: gray, timings: &timings))
                    reports[index].add(image: image.name, scores: zip(predicted, truth).map { Dice.score($0, $1) })
                } catch {
                    failures[index] = error
                }
            }
        }
        return zip(reports, failures).map { report, failure in failure.map { .failure($0) } ?? .success(report.mean) }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
