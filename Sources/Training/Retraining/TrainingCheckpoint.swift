import Foundation
import Models
import SystemIO
import TensorEngine

/// What a seed's training has done so far; saved with every checkpoint.
public struct SeedProgress: Codable, Sendable, Equatable {
    public struct EpochRecord: Codable, Sendable, Equatable {
        public var epoch: Int
        public var meanLoss: Double
        /// Validation mean Dice of this member at the training size (threshold 0.5).
        public var validationDice: Double
        /// Seconds since the seed's training began (excluding time between runs).
        public var elapsedSeconds: Double
    }

    public var seed: Int
    public var epochsDone: Int
    public var optimizerSteps: Int
    public var elapsedSeconds: Double
    public var history: [EpochRecord]
    /// The checkpoint file these figures belong to (relative to the seed folder).
    public var checkpointFile: String
    public var checkpointSHA256: String
}

/// A seed's checkpoint: `epoch-NNN.safetensors` (state_dict under SMP's keys plus
/// AdamW's moments under `adamw.m.` / `adamw.v.`) written first, then
/// `progress.json` naming it and its sha256 written last, atomically. A process
/// killed at any moment leaves either the previous pair or the new one.
public enum TrainingCheckpoint {
    static let progressFile = "progress.json"

    public static func save(model: TrainableUnetPlusPlus, optimizer: AdamW, progress: SeedProgress,
                            in directory: String) throws -> SeedProgress {
        try AtomicFile.makeDirectories(directory)
        var tensors = model.stateDict()
        for (index, parameter) in optimizer.parameters.enumerated() {
            tensors["adamw.m.\(parameter.name)"] = optimizer.firstMoments[index]
            tensors["adamw.v.\(parameter.name)"] = optimizer.secondMoments[index]
        }
        let bytes = SafeTensors.encode(tensors, metadata: ["adamw_step": String(optimizer.step),
                                                           "epochs_done": String(progress.epochsDone)])
        let file = String(format: "epoch-%03d.safetensors", progress.epochsDone)
        try AtomicFile.write(bytes, to: "\(directory)/\(file)")
        var saved = progress
        saved.checkpointFile = file
        saved.checkpointSHA256 = SHA256Digest.hex(bytes)
        saved.optimizerSteps = optimizer.step
        try AtomicFile.write(try ManifestDirectory.encode(saved), to: "\(directory)/\(progressFile)")
        // Older checkpoints are only dropped once the new pair is durable.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where name.hasPrefix("epoch-") && name.hasSuffix(".safetensors") && name != file {
            try? FileManager.default.removeItem(atPath: "\(directory)/\(name)")
        }
        return saved
    }

    /// The saved progress, or nil when the folder holds no checkpoint yet.
    public static func progress(in directory: String) throws -> SeedProgress? {
        let path = "\(directory)/\(progressFile)"
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(SeedProgress.self, from: Data(try AtomicFile.read(path)))
        } catch {
            throw TrainingError("\(path): unreadable checkpoint progress (\(error))")
        }
    }

    /// Puts the checkpoint's weights, BatchNorm statistics and optimiser state back.
    public static func restore(_ progress: SeedProgress, in directory: String, model: TrainableUnetPlusPlus,
                               optimizer: AdamW) throws {
        let path = "\(directory)/\(progress.checkpointFile)"
        let bytes = try AtomicFile.read(path)
        guard SHA256Digest.hex(bytes) == progress.checkpointSHA256 else {
            throw TrainingError("\(path): checksum differs from \(directory)/\(progressFile); delete the folder to start this seed again")
        }
        let (tensors, metadata) = try bytes.withUnsafeBytes { try SafeTensors.read(bytes: $0, name: path) }
        func copy(_ key: String, into target: Tensor) throws {
            guard let source = tensors[key], source.shape == target.shape else {
                throw TrainingError("\(path): tensor '\(key)' missing or of another shape")
            }
            target.storage.update(from: source.storage, count: target.count)
        }
        for parameter in model.parameters { try copy(parameter.name, into: parameter.value) }
        for norm in model.batchNorms {
            try copy("\(norm.name).running_mean", into: norm.runningMean)
            try copy("\(norm.name).running_var", into: norm.runningVar)
        }
        for (index, parameter) in optimizer.parameters.enumerated() {
            try copy("adamw.m.\(parameter.name)", into: optimizer.firstMoments[index])
            try copy("adamw.v.\(parameter.name)", into: optimizer.secondMoments[index])
        }
        guard let step = metadata["adamw_step"].flatMap(Int.init) else {
            throw TrainingError("\(path): no adamw_step in its metadata")
        }
        optimizer.step = step
    }
}

public struct TrainingError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
