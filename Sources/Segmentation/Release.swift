import Foundation
import Models
import SystemIO

/// How a release turns its members' outputs into one mask set.
public enum CombineMode: String, Codable, Sendable, CaseIterable {
    /// Mean of the members' logits before the sigmoid (the competition team's soft ensemble).
    case soft
    /// Per-pixel vote of the members' thresholded masks.
    case hard
}

/// What a soft ensemble averages.
public enum SoftAverage: String, Codable, Sendable, CaseIterable {
    case logits
    case probabilities
}

public enum TestTimeAugmentation: String, Codable, Sendable, CaseIterable {
    case none
    /// The original and its horizontal mirror, logits averaged.
    case hflip
}

/// `release.json`: an ensemble of models from the store and how to combine them.
public struct ReleaseManifest: Codable, Sendable, Equatable {
    public static let currentFormat = 1

    public struct Member: Codable, Sendable, Equatable {
        public var model: String
        public var weightsSHA256: String
        enum CodingKeys: String, CodingKey { case model, weightsSHA256 = "weights_sha256" }
        public init(model: String, weightsSHA256: String) {
            self.model = model
            self.weightsSHA256 = weightsSHA256
        }
    }

    public var formatVersion: Int
    public var name: String
    public var members: [Member]
    public var combine: CombineMode
    public var softAverage: SoftAverage
    /// Hard votes needed; nil = strict majority.
    public var minVotes: Int?
    /// Per-class probability thresholds; nil = the first member's.
    public var thresholds: [Float]?
    public var tta: TestTimeAugmentation
    public var createdAt: String
    /// Validation metrics and notes, e.g. "val_dice".
    public var metrics: [String: Double]

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", name, members, combine
        case softAverage = "soft_average", minVotes = "min_votes", thresholds, tta
        case createdAt = "created_at", metrics
    }

    public init(name: String, members: [Member], combine: CombineMode, softAverage: SoftAverage = .logits,
                minVotes: Int? = nil, thresholds: [Float]? = nil, tta: TestTimeAugmentation = .none,
                metrics: [String: Double] = [:]) {
        formatVersion = Self.currentFormat
        self.name = name
        self.members = members
        self.combine = combine
        self.softAverage = softAverage
        self.minVotes = minVotes
        self.thresholds = thresholds
        self.tta = tta
        createdAt = ISO8601DateFormatter().string(from: Date())
        self.metrics = metrics
    }
}

/// A release with its members loaded and verified.
public struct LoadedRelease: Sendable {
    public let manifest: ReleaseManifest
    public let members: [LoadedModel]

    /// A one-member "release" for running a single model from the store.
    public init(single model: LoadedModel, tta: TestTimeAugmentation = .none) {
        manifest = ReleaseManifest(name: "model:\(model.manifest.name)",
                                   members: [.init(model: model.manifest.name, weightsSHA256: model.manifest.weightsSHA256)],
                                   combine: .soft, tta: tta)
        members = [model]
    }

    public init(manifest: ReleaseManifest, members: [LoadedModel]) {
        self.manifest = manifest
        self.members = members
    }

    public var classNames: [String] { members[0].manifest.classes }

    /// Probability thresholds per class: the release's, else the first member's.
    public var thresholds: [Float] { manifest.thresholds ?? members[0].manifest.thresholds }

    public var votesNeeded: Int { manifest.minVotes ?? (members.count / 2 + 1) }
}

/// Releases live beside the model store: `<state>/releases/<name>/release.json`
/// next to `<state>/models/`.
public struct ReleaseStore: Sendable {
    public let root: String
    public let models: ModelStore

    public init(root: String, models: ModelStore) {
        self.root = root
        self.models = models
    }

    /// The releases folder that sits beside a model store.
    public init(beside models: ModelStore) {
        let parent = (models.root as NSString).deletingLastPathComponent
        self.init(root: (parent.isEmpty ? "." : parent) + "/releases", models: models)
    }

    public func directory(of name: String) -> String { "\(root)/\(name)" }

    var entries: ManifestDirectory { ManifestDirectory(root: root, file: "release.json", kind: "release") }

    public func names() -> [String] { entries.names() }

    public func manifest(of name: String) throws -> ReleaseManifest { try entries.read(name, as: ReleaseManifest.self) }

    /// Loads every member and checks each one's weights against the sha256 the release recorded.
    public func load(_ name: String) throws -> LoadedRelease {
        let manifest = try manifest(of: name)
        var members: [LoadedModel] = []
        for member in manifest.members {
            let model = try models.load(member.model)
            guard model.manifest.weightsSHA256 == member.weightsSHA256 else {
                throw ModelError("release '\(name)': member '\(member.model)' has weights \(model.manifest.weightsSHA256.prefix(12))…, the release was made with \(member.weightsSHA256.prefix(12))…")
            }
            members.append(model)
        }
        try Self.checkCompatible(members.map(\.manifest), release: name)
        return LoadedRelease(manifest: manifest, members: members)
    }

    static func checkCompatible(_ members: [ModelManifest], release: String) throws {
        guard let first = members.first else { throw ModelError("release '\(release)' has no members") }
        for m in members.dropFirst() where m.classes != first.classes {
            throw ModelError("release '\(release)': member '\(m.name)' predicts other classes than '\(first.name)'")
        }
    }

    /// Writes a new release from models in the store (names checked, sha256 recorded).
    @discardableResult
    public func create(name: String, members: [String], combine: CombineMode, softAverage: SoftAverage = .logits,
                       minVotes: Int? = nil, tta: TestTimeAugmentation = .none, thresholds: [Float]? = nil,
                       metrics: [String: Double] = [:]) throws -> ReleaseManifest {
        guard !members.isEmpty else { throw ModelError("a release needs at least one member") }
        guard Set(members).count == members.count else { throw ModelError("--members names a model twice") }
        let manifests = try members.map { try models.manifest(of: $0) }
        try Self.checkCompatible(manifests, release: name)
        if let minVotes, minVotes < 1 || minVotes > members.count {
            throw ModelError("--min-votes \(minVotes) must be between 1 and the number of members (\(members.count))")
        }
        if let thresholds, thresholds.count != manifests[0].classes.count {
            throw ModelError("\(thresholds.count) thresholds given for \(manifests[0].classes.count) classes")
        }
        let manifest = ReleaseManifest(name: name, members: manifests.map { .init(model: $0.name, weightsSHA256: $0.weightsSHA256) },
                                       combine: combine, softAverage: softAverage, minVotes: minVotes,
                                       thresholds: thresholds, tta: tta, metrics: metrics)
        try entries.publish(name, files: [("release.json", try ManifestDirectory.encode(manifest))])
        return manifest
    }
}

#if canImport(Glibc)
import Glibc
#endif
