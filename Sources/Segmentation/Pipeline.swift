import CompetitionFormat
import Foundation
import Imaging
import Models
import TensorEngine

/// The three files the product writes for one radiograph, and what went into them.
public struct PipelineResult: Sendable {
    public let csv: [UInt8]
    public let overlayPNG: [UInt8]
    public let sidecarJSON: [UInt8]
    /// Pixels per class at the input's size.
    public let classAreas: [Int]
    /// The CSV rows, for batch submissions.
    public let rows: [SubmissionRow]
    public let flags: [QualityFlags.Flag]
    /// Seconds per stage.
    public let timings: [String: Double]
    /// The members' logits averaged (after TTA) at model resolution, when asked for.
    public let logits: Tensor?
}

/// The provenance record written beside every result (`<stem>.json`).
public struct Sidecar: Codable, Sendable {
    public struct Input: Codable, Sendable {
        public var name: String
        public var sha256: String
        public var width: Int
        public var height: Int
        public var bytes: Int
    }
    public struct Member: Codable, Sendable {
        public var model: String
        public var encoder: String
        public var inputSize: Int
        public var weightsSHA256: String
        enum CodingKeys: String, CodingKey { case model, encoder, inputSize = "input_size", weightsSHA256 = "weights_sha256" }
    }
    public var formatVersion = 1
    public var input: Input
    public var release: String
    public var members: [Member]
    public var combine: String
    public var tta: String
    public var thresholds: [Float]
    public var classPixels: [String: Int]
    public var flags: [QualityFlags.Flag]
    public var timingsSeconds: [String: Double]
    public var createdAt: String
    public var tool: String

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", input, release, members, combine, tta, thresholds
        case classPixels = "class_pixels", flags, timingsSeconds = "timings_seconds", createdAt = "created_at", tool
    }
}

/// One radiograph's bytes → CSV, overlay and sidecar, with a loaded release.
/// Pure computation: it reads no files and writes none; the caller decides
/// where results go and how failures are handled.
public final class SegmentationPipeline: @unchecked Sendable {
    public static let toolVersion = "bonesegd 0.1.0"
    public let release: LoadedRelease
    public let maxSide: Int
    public let overlayScale: Double
    let pool: ComputePool

    public init(release: LoadedRelease, maxSide: Int = PNGCodec.defaultMaxSide, overlayScale: Double = 1,
                pool: ComputePool = .shared) {
        self.release = release
        self.maxSide = maxSide
        self.overlayScale = overlayScale
        self.pool = pool
    }

    /// Runs every member once on a small input, so the first real image does not
    /// pay for first-touch memory, and a broken release fails before it serves.
    public func warmUp() throws {
        let gray = GrayImage(width: 64, height: 64, pixels: [Float](repeating: 128, count: 64 * 64))
        var timings: [String: Double] = [:]
        _ = try masks(for: gray, timings: &timings)
    }

    public func process(imageBytes: [UInt8], imageName: String, keepLogits: Bool = false) throws -> PipelineResult {
        var timings: [String: Double] = [:]
        var clock = Stopwatch()
        let decoded = try ImageCodec.decode(imageBytes, maxWidth: maxSide, maxHeight: maxSide)
        let gray = decoded.grayscale()
        timings["decode"] = clock.lap()
        let (bitmap, logits) = try masks(for: gray, timings: &timings, keepLogits: keepLogits)
        clock.lap()

        let runs = Postprocessing.runs(of: bitmap)
        let rows = SubmissionCSV.rows(imageName: imageName, rles: runs.map { RLE.encode(runs: $0) })
        let csv = SubmissionCSV.render(rows)
        let areas = runs.map { RLE.area($0) }
        timings["rle_csv"] = clock.lap()

        let overlay = try OverlayRenderer.render(gray: gray, classes: bitmap, classNames: release.classNames, scale: overlayScale)
        timings["overlay"] = clock.lap()

        let flags = QualityFlags.evaluate(areas: areas, classNames: release.classNames, imagePixels: gray.width * gray.height)
        let sidecar = Sidecar(
            input: .init(name: (imageName as NSString).lastPathComponent, sha256: SHA256Digest.hex(imageBytes),
                         width: gray.width, height: gray.height, bytes: imageBytes.count),
            release: release.manifest.name,
            members: release.members.map { .init(model: $0.manifest.name, encoder: $0.manifest.encoder.rawValue,
                                                 inputSize: $0.manifest.inputSize, weightsSHA256: $0.manifest.weightsSHA256) },
            combine: release.members.count == 1 ? "single" : release.manifest.combine.rawValue,
            tta: release.manifest.tta.rawValue,
            thresholds: release.thresholds,
            classPixels: Dictionary(uniqueKeysWithValues: zip(release.classNames, areas)),
            flags: flags,
            timingsSeconds: timings,
            createdAt: ISO8601DateFormatter().string(from: Date()),
            tool: Self.toolVersion)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var json = try encoder.encode(sidecar)
        json.append(0x0A)
        timings["sidecar"] = clock.lap()
        return PipelineResult(csv: csv, overlayPNG: overlay, sidecarJSON: [UInt8](json), classAreas: areas, rows: rows,
                              flags: flags, timings: timings, logits: logits)
    }

    /// The members' logits averaged (after TTA) at model resolution, for `--logits`.
    public func combinedLogits(imageBytes: [UInt8]) throws -> Tensor {
        var timings: [String: Double] = [:]
        let gray = try ImageCodec.decode(imageBytes, maxWidth: maxSide, maxHeight: maxSide).grayscale()
        return Ensemble.meanLogits(try memberLogits(gray, timings: &timings), pool: pool)
    }

    /// The release's masks at the image's own size; adds its stages to `timings`.
    public func masks(for gray: GrayImage, timings: inout [String: Double]) throws -> ClassBitmap {
        try masks(for: gray, timings: &timings, keepLogits: false).0
    }

    func masks(for gray: GrayImage, timings: inout [String: Double], keepLogits: Bool) throws -> (ClassBitmap, Tensor?) {
        var clock = Stopwatch()
        let outputs = try memberLogits(gray, timings: &timings)
        var meanLogits: Tensor? = nil
        clock.lap()
        let probabilityThresholds = release.thresholds
        let bitmap: ClassBitmap
        switch (release.members.count, release.manifest.combine) {
        case (1, _), (_, .soft):
            let combined: Tensor
            let thresholds: [Float]
            if release.manifest.softAverage == .probabilities && release.members.count > 1 {
                combined = Ensemble.meanProbabilities(outputs, pool: pool)
                thresholds = probabilityThresholds
            } else {
                combined = Ensemble.meanLogits(outputs, pool: pool)
                meanLogits = combined
                thresholds = probabilityThresholds.map(Postprocessing.logitThreshold)
            }
            timings["combine", default: 0] += clock.lap()
            bitmap = Postprocessing.threshold(combined, height: gray.height, width: gray.width, thresholds: thresholds, pool: pool)
        case (_, .hard):
            let memberMasks = zip(outputs, release.members).map { logits, member in
                Postprocessing.threshold(logits, height: gray.height, width: gray.width,
                                         thresholds: member.manifest.thresholds.map(Postprocessing.logitThreshold), pool: pool)
            }
            bitmap = Postprocessing.vote(memberMasks, minVotes: release.votesNeeded)
        }
        timings["upsample_threshold", default: 0] += clock.lap()
        if keepLogits && meanLogits == nil { meanLogits = Ensemble.meanLogits(outputs, pool: pool) }
        return (bitmap, keepLogits ? meanLogits : nil)
    }

    /// Each member's logits at its own input size, with test-time augmentation applied.
    func memberLogits(_ gray: GrayImage, timings: inout [String: Double]) throws -> [Tensor] {
        var outputs: [Tensor] = []
        for member in release.members {
            var clock = Stopwatch()
            let input = Preprocessing.input(for: gray, size: member.manifest.inputSize, normalize: member.manifest.normalize)
            timings["preprocess", default: 0] += clock.lap()
            var logits = try member.network.forward(input)
            if release.manifest.tta == .hflip {
                let mirrored = try member.network.forward(Ops.flipHorizontal(input))
                logits = Ensemble.mean([logits, Ops.flipHorizontal(mirrored)])
            }
            timings["forward", default: 0] += clock.lap()
            outputs.append(logits)
        }
        return outputs
    }
}

/// Wall-clock laps in seconds.
struct Stopwatch {
    private var last = DispatchTime.now().uptimeNanoseconds

    @discardableResult
    mutating func lap() -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        defer { last = now }
        return Double(now - last) / 1e9
    }
}
