import CompetitionFormat
import Foundation
import Imaging

/// The three outputs of one image.
public struct ProcessedImage: Sendable {
    public let csv: [UInt8]
    public let overlayPNG: [UInt8]
    public let sidecarJSON: [UInt8]
    public let classAreas: [Int]
    public init(csv: [UInt8], overlayPNG: [UInt8], sidecarJSON: [UInt8], classAreas: [Int]) {
        self.csv = csv
        self.overlayPNG = overlayPNG
        self.sidecarJSON = sidecarJSON
        self.classAreas = classAreas
    }
}

/// Turns one image's bytes into its outputs. Thrown `ImageDecodeError`s mean the input
/// is bad (quarantine); other errors are counted as failed attempts.
public protocol JobProcessor: Sendable {
    func process(imageBytes: [UInt8], imageName: String) throws -> ProcessedImage
}

/// A processor with the release it serves; swapped whole on reload, so a job keeps
/// the processor it started with.
public struct LoadedProcessor: Sendable {
    public let release: String
    public let members: [String]
    public let processor: any JobProcessor
    public init(release: String, members: [String], processor: any JobProcessor) {
        self.release = release
        self.members = members
        self.processor = processor
    }
}

/// Loads the processor for a named release (or for the active one when `name` is nil).
public protocol ProcessorLoader: Sendable {
    func load(releaseName: String) throws -> LoadedProcessor
}

public struct ReleaseLoadError: Error, CustomStringConvertible, Sendable {
    public let release: String
    public let reason: String
    public init(release: String, reason: String) {
        self.release = release
        self.reason = reason
    }
    public var description: String { "release \(release): \(reason)" }
}

/// A model-free segmenter: class k is the set of pixels whose 8-bit gray value falls
/// in band k of 29 equal bands over the image's own intensity range. Deterministic and
/// cheap, it exercises every output path (decode with the size guard, RLE CSV, overlay
/// PNG, sidecar) so the spool can be tested and an installation smoke-checked without
/// model weights. Its release is a directory `releases/<name>/` with a release.json
/// that must be a JSON object.
public struct IntensityProcessor: JobProcessor {
    public let release: String
    public let maxSide: Int

    public init(release: String, maxSide: Int) {
        self.release = release
        self.maxSide = maxSide
    }

    public func process(imageBytes: [UInt8], imageName: String) throws -> ProcessedImage {
        let started = Date()
        let decoded = try ImageCodec.decode(imageBytes, maxWidth: maxSide, maxHeight: maxSide)
        let gray = decoded.grayscale().bytes()
        let width = decoded.width, height = decoded.height
        let lo = Int(gray.min() ?? 0), hi = Int(gray.max() ?? 0)
        let span = max(1, hi - lo + 1)
        let classes = BoneClasses.count
        var labels = [UInt8](repeating: 0, count: gray.count)
        var areas = [Int](repeating: 0, count: classes)
        for i in gray.indices {
            let band = min(classes - 1, (Int(gray[i]) - lo) * classes / span)
            labels[i] = UInt8(band)
            areas[band] += 1
        }
        var rles = [String]()
        rles.reserveCapacity(classes)
        var mask = [UInt8](repeating: 0, count: gray.count)
        for k in 0..<classes {
            for i in labels.indices { mask[i] = labels[i] == UInt8(k) ? 1 : 0 }
            rles.append(mask.withUnsafeBufferPointer { RLE.encode(pixels: $0) })
        }
        let csv = SubmissionCSV.render(SubmissionCSV.rows(imageName: imageName, rles: rles))
        var rgb = [UInt8](repeating: 0, count: gray.count * 3)
        for i in gray.indices {
            let k = Int(labels[i])
            let g = UInt16(gray[i])
            rgb[3 * i] = UInt8((g + UInt16((k * 73) % 256)) / 2)
            rgb[3 * i + 1] = UInt8((g + UInt16((k * 151) % 256)) / 2)
            rgb[3 * i + 2] = UInt8((g + UInt16((k * 199) % 256)) / 2)
        }
        let overlay = try PNGCodec.encode(pixels: rgb, width: width, height: height, channels: 3)
        let sidecar: [String: Any] = [
            "image": imageName,
            "width": width,
            "height": height,
            "release": release,
            "engine": "intensity",
            "members": [String](),
            "class_pixels": Dictionary(uniqueKeysWithValues: zip(BoneClasses.names, areas)),
            "timings_ms": ["process": Date().timeIntervalSince(started) * 1000],
        ]
        let json = try JSONSerialization.data(withJSONObject: sidecar, options: [.sortedKeys, .prettyPrinted])
        return ProcessedImage(csv: csv, overlayPNG: overlay, sidecarJSON: [UInt8](json), classAreas: areas)
    }
}

public struct IntensityLoader: ProcessorLoader {
    public let releasesDir: String
    public let maxSide: Int
    public init(releasesDir: String, maxSide: Int) {
        self.releasesDir = releasesDir
        self.maxSide = maxSide
    }

    public func load(releaseName: String) throws -> LoadedProcessor {
        let path = "\(releasesDir)/\(releaseName)/release.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ReleaseLoadError(release: releaseName, reason: "\(path): cannot be read")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), object is [String: Any] else {
            throw ReleaseLoadError(release: releaseName, reason: "\(path): not a JSON object")
        }
        let processor = IntensityProcessor(release: releaseName, maxSide: maxSide)
        // Warm-up: one image through every stage before the release serves.
        let probe = try PNGCodec.encode(pixels: (0..<64).map { UInt8($0 * 4) }, width: 8, height: 8, channels: 1)
        _ = try processor.process(imageBytes: probe, imageName: "warmup.png")
        return LoadedProcessor(release: releaseName, members: [], processor: processor)
    }
}
