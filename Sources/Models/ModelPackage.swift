import COpenSSL
import Foundation
import SystemIO
import TensorEngine

/// How pixel values (0...255) become network input.
public enum Normalization: String, Codable, Sendable, CaseIterable {
    /// x / 255
    case unit
    /// (x / 255 − mean) / std with ImageNet's mean and std, per channel.
    case imagenet
    /// (x / 255 − 0.5) / 0.5
    case half

    /// (scale, offset) per channel so that value = x·scale + offset.
    public func affine(channel: Int) -> (Float, Float) {
        switch self {
        case .unit: return (1 / 255, 0)
        case .half: return (2 / 255, -1)
        case .imagenet:
            let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
            return (1 / (255 * std[channel]), -mean[channel] / std[channel])
        }
    }
}

/// `model.json`: everything needed to rebuild and use the network in `weights.safetensors`.
public struct ModelManifest: Codable, Sendable, Equatable {
    public static let currentFormat = 1

    public var formatVersion: Int
    public var name: String
    public var arch: String
    public var encoder: EncoderName
    /// SMP's `encoder_depth`; packages written before it existed have none and mean 5.
    public var encoderDepth: Int
    public var decoderChannels: [Int]
    /// Class names in channel order.
    public var classes: [String]
    /// Square side of the network input; images are resized to it.
    public var inputSize: Int
    public var normalize: Normalization
    /// Per-class probability thresholds, in channel order.
    public var thresholds: [Float]
    public var weightsSHA256: String
    public var provenance: [String: String]

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", name, arch, encoder
        case encoderDepth = "encoder_depth"
        case decoderChannels = "decoder_channels", classes
        case inputSize = "input_size", normalize, thresholds
        case weightsSHA256 = "weights_sha256", provenance
    }

    public init(name: String, encoder: EncoderName, encoderDepth: Int = 5, decoderChannels: [Int], classes: [String],
                inputSize: Int, normalize: Normalization, thresholds: [Float]? = nil, weightsSHA256: String,
                provenance: [String: String]) {
        formatVersion = Self.currentFormat
        self.name = name
        arch = "unetplusplus"
        self.encoder = encoder
        self.encoderDepth = encoderDepth
        self.decoderChannels = decoderChannels
        self.classes = classes
        self.inputSize = inputSize
        self.normalize = normalize
        self.thresholds = thresholds ?? [Float](repeating: 0.5, count: classes.count)
        self.weightsSHA256 = weightsSHA256
        self.provenance = provenance
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try c.decode(Int.self, forKey: .formatVersion)
        name = try c.decode(String.self, forKey: .name)
        arch = try c.decode(String.self, forKey: .arch)
        encoder = try c.decode(EncoderName.self, forKey: .encoder)
        encoderDepth = try c.decodeIfPresent(Int.self, forKey: .encoderDepth) ?? 5
        decoderChannels = try c.decode([Int].self, forKey: .decoderChannels)
        classes = try c.decode([String].self, forKey: .classes)
        inputSize = try c.decode(Int.self, forKey: .inputSize)
        normalize = try c.decode(Normalization.self, forKey: .normalize)
        thresholds = try c.decode([Float].self, forKey: .thresholds)
        weightsSHA256 = try c.decode(String.self, forKey: .weightsSHA256)
        provenance = try c.decode([String: String].self, forKey: .provenance)
    }
}

/// A model ready to run: its manifest and the network built from its weights.
public struct LoadedModel: Sendable {
    public let manifest: ModelManifest
    public let network: SegmentationModel
    public let directory: String
}

/// SHA-256 through OpenSSL's libcrypto, as lowercase hex.
public enum SHA256Digest {
    /// Incremental hashing for data that arrives in pieces.
    public final class Hasher {
        private let context: OpaquePointer

        public init() {
            context = EVP_MD_CTX_new()
            EVP_DigestInit_ex(context, EVP_sha256(), nil)
        }

        deinit { EVP_MD_CTX_free(context) }

        public func update(_ buffer: UnsafeRawBufferPointer) {
            if let base = buffer.baseAddress, buffer.count > 0 { EVP_DigestUpdate(context, base, buffer.count) }
        }

        public func finalizeHex() -> String {
            var digest = [UInt8](repeating: 0, count: 32)
            var length: UInt32 = 0
            EVP_DigestFinal_ex(context, &digest, &length)
            return digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
        }
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let hasher = Hasher()
        bytes.withUnsafeBytes { hasher.update($0) }
        return hasher.finalizeHex()
    }

    public static func hex(_ data: Data) -> String {
        let hasher = Hasher()
        data.withUnsafeBytes { hasher.update($0) }
        return hasher.finalizeHex()
    }

    public static func hex(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ModelError("\(path): cannot open for reading")
        }
        defer { try? handle.close() }
        let hasher = Hasher()
        while let chunk = try handle.read(upToCount: 1 << 22), !chunk.isEmpty { chunk.withUnsafeBytes { hasher.update($0) } }
        return hasher.finalizeHex()
    }
}

/// The model store: one directory per model, `<root>/<name>/{model.json, weights.safetensors}`.
public struct ModelStore: Sendable {
    public static let defaultRoot = "/var/lib/bonesegd/models"
    public let root: String

    public init(root: String = ModelStore.defaultRoot) { self.root = root }

    public func directory(of name: String) -> String { "\(root)/\(name)" }

    public static func validate(name: String) throws {
        let allowed = name.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }
        guard !name.isEmpty, allowed, !name.hasPrefix(".") else {
            throw ModelError("model name '\(name)' must be letters, digits, '-', '_' or '.', not starting with '.'")
        }
    }

    var entries: ManifestDirectory { ManifestDirectory(root: root, file: "model.json", kind: "model") }

    /// Names of the models in the store, sorted.
    public func names() -> [String] { entries.names() }

    public func manifest(of name: String) throws -> ModelManifest {
        let manifest = try entries.read(name, as: ModelManifest.self)
        guard manifest.formatVersion <= ModelManifest.currentFormat else {
            throw ModelError("\(directory(of: name))/model.json: format version \(manifest.formatVersion) is newer than this bonectl understands")
        }
        return manifest
    }

    /// Loads and verifies a model: the weights' sha256 must match the manifest.
    public func load(_ name: String) throws -> LoadedModel {
        let manifest = try manifest(of: name)
        let weightsPath = "\(directory(of: name))/weights.safetensors"
        let digest = try SHA256Digest.hex(ofFile: weightsPath)
        guard digest == manifest.weightsSHA256 else {
            throw ModelError("\(weightsPath): sha256 \(digest) does not match model.json (\(manifest.weightsSHA256)); the file was changed or damaged")
        }
        let network = try Self.build(manifest: manifest, weightsPath: weightsPath)
        return LoadedModel(manifest: manifest, network: network, directory: directory(of: name))
    }

    static func build(manifest: ModelManifest, weightsPath: String) throws -> SegmentationModel {
        guard manifest.arch == "unetplusplus" else { throw ModelError("\(weightsPath): unsupported arch '\(manifest.arch)'") }
        let (tensors, _) = try SafeTensors.read(path: weightsPath)
        return try SegmentationModel(encoder: manifest.encoder, encoderDepth: manifest.encoderDepth,
                                     decoderChannels: manifest.decoderChannels,
                                     classes: manifest.classes.count, weights: StateDict(tensors, source: weightsPath))
    }

    /// Imports SMP weights unchanged: the network is built from them first (so a
    /// mismatch is refused before anything is written), then the package is
    /// assembled in a hidden directory and renamed into place.
    @discardableResult
    public func importWeights(from weightsPath: String, name: String, encoder: EncoderName, encoderDepth: Int = 5,
                              decoderChannels: [Int], classes: [String], inputSize: Int, normalize: Normalization,
                              provenance extra: [String: String] = [:]) throws -> ModelManifest {
        try Self.validate(name: name)
        try SegmentationModel.check(encoder: encoder, encoderDepth: encoderDepth, decoderChannels: decoderChannels, source: weightsPath)
        let multiple = 1 << encoderDepth
        guard inputSize > 0, inputSize % multiple == 0 else {
            throw ModelError("--input-size \(inputSize) must be a positive multiple of \(multiple) (2^encoder depth)")
        }
        let target = directory(of: name)
        guard !FileManager.default.fileExists(atPath: target) else {
            throw ModelError("model '\(name)' already exists in \(root)")
        }
        let bytes = try AtomicFile.read(weightsPath)
        let digest = SHA256Digest.hex(bytes)
        let (tensors, _) = try bytes.withUnsafeBytes { try SafeTensors.read(bytes: $0, name: weightsPath) }
        _ = try SegmentationModel(encoder: encoder, encoderDepth: encoderDepth, decoderChannels: decoderChannels,
                                  classes: classes.count, weights: StateDict(tensors, source: weightsPath))
        var provenance = extra
        provenance["imported_from"] = (weightsPath as NSString).lastPathComponent
        provenance["imported_at"] = ISO8601DateFormatter().string(from: Date())
        let manifest = ModelManifest(name: name, encoder: encoder, encoderDepth: encoderDepth,
                                     decoderChannels: decoderChannels, classes: classes,
                                     inputSize: inputSize, normalize: normalize, weightsSHA256: digest, provenance: provenance)
        try entries.publish(name, files: [("weights.safetensors", bytes), ("model.json", try ManifestDirectory.encode(manifest))])
        return manifest
    }
}

#if canImport(Glibc)
import Glibc
#endif
