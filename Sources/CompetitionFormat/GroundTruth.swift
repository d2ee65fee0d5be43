import Foundation
import Imaging
import SystemIO

/// One labelled image: its 29 class masks as runs, in class order.
public struct GroundTruthImage: Sendable {
    /// The file name without extension: matches a submission's image_name without its extension.
    public let stem: String
    public let annotationPath: String
    /// The radiograph whose header gave the size, when one was found.
    public let imagePath: String?
    public let width: Int
    public let height: Int
    public let classRuns: [[Run]]
}

/// A fault in ground truth or in a prediction scored against it: "file: problem",
/// the same shape as an annotation file's own errors.
public typealias GroundTruthError = AnnotationError

/// Ground truth from a folder in the competition layout
/// (`outputs_json/IDxxx/<stem>.json` with `DCM/IDxxx/<stem>.png` beside it), or
/// from annotation JSON files directly in the folder (or its subfolders), each
/// with an optional `<stem>.png` next to it. Masks are the annotation polygons
/// filled as the competition did (`cv2.fillPoly`, see `PolygonFill`) at the size
/// in the PNG's header when the PNG is there, else `defaultSize`×`defaultSize`.
public enum GroundTruth {
    /// Coordinates beyond this are rejected: no radiograph is that large.
    public static let maxCoordinate = 1 << 24

    public struct Source: Sendable, Equatable {
        public let annotationPath: String
        public let imagePath: String?
    }

    /// The annotation files of a folder, sorted by path, each with its PNG if present.
    public static func sources(in directory: String) throws -> [Source] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw GroundTruthError(path: directory, message: "not a directory")
        }
        let jsonRoot: String
        let pngRoot: String?
        let competitionLayout = (directory as NSString).appendingPathComponent("outputs_json")
        if FileManager.default.fileExists(atPath: competitionLayout, isDirectory: &isDirectory), isDirectory.boolValue {
            jsonRoot = competitionLayout
            pngRoot = (directory as NSString).appendingPathComponent("DCM")
        } else {
            jsonRoot = directory
            pngRoot = nil
        }
        guard let walker = FileManager.default.enumerator(atPath: jsonRoot) else {
            throw GroundTruthError(path: jsonRoot, message: "cannot list")
        }
        var relative = [String]()
        while let entry = walker.nextObject() as? String {
            if entry.lowercased().hasSuffix(".json") { relative.append(entry) }
        }
        relative.sort()
        guard !relative.isEmpty else {
            throw GroundTruthError(path: jsonRoot, message: "no annotation .json files (expected outputs_json/IDxxx/*.json or *.json)")
        }
        return relative.map { entry in
            let stemPath = (entry as NSString).deletingPathExtension + ".png"
            let png = ((pngRoot ?? jsonRoot) as NSString).appendingPathComponent(stemPath)
            return Source(annotationPath: (jsonRoot as NSString).appendingPathComponent(entry),
                          imagePath: FileManager.default.fileExists(atPath: png) ? png : nil)
        }
    }

    /// Loads every annotation of the folder; errors name the file at fault.
    public static func load(directory: String, defaultSize: Int = 2048) throws -> [GroundTruthImage] {
        var seen = [String: String]()
        var out = [GroundTruthImage]()
        var scratch = [UInt8]()
        for source in try sources(in: directory) {
            let image = try load(source, defaultSize: defaultSize, scratch: &scratch)
            if let other = seen[image.stem] {
                throw GroundTruthError(path: source.annotationPath, message: "image '\(image.stem)' is also annotated by \(other)")
            }
            seen[image.stem] = source.annotationPath
            out.append(image)
        }
        return out
    }

    public static func load(_ source: Source, defaultSize: Int, scratch: inout [UInt8]) throws -> GroundTruthImage {
        let width: Int, height: Int
        if let png = source.imagePath {
            (width, height) = try imageSize(png)
        } else {
            width = defaultSize
            height = defaultSize
        }
        let annotation = try AnnotationFile.read(path: source.annotationPath)
        let runs = try classRuns(annotation, path: source.annotationPath, width: width, height: height, scratch: &scratch)
        let stem = ((source.annotationPath as NSString).lastPathComponent as NSString).deletingPathExtension
        return GroundTruthImage(stem: stem, annotationPath: source.annotationPath, imagePath: source.imagePath,
                                width: width, height: height, classRuns: runs)
    }

    /// The 29 masks of an annotation as runs. Every class must appear exactly
    /// once, and no other label may appear.
    public static func classRuns(_ annotation: AnnotationFile, path: String, width: Int, height: Int,
                                 scratch: inout [UInt8]) throws -> [[Run]] {
        var polygons = [[Point]?](repeating: nil, count: BoneClasses.count)
        for item in annotation.annotations {
            guard let index = BoneClasses.index(of: item.label) else {
                throw GroundTruthError(path: path, message: "unknown class '\(item.label)'")
            }
            guard polygons[index] == nil else {
                throw GroundTruthError(path: path, message: "class '\(item.label)' appears more than once")
            }
            for p in item.points where abs(p.x) > maxCoordinate || abs(p.y) > maxCoordinate {
                throw GroundTruthError(path: path, message: "class '\(item.label)': point [\(p.x), \(p.y)] is out of range")
            }
            polygons[index] = item.points
        }
        if let missing = polygons.firstIndex(where: { $0 == nil }) {
            throw GroundTruthError(path: path, message: "class '\(BoneClasses.names[missing])' is missing")
        }
        let count = width * height
        if scratch.count != count { scratch = [UInt8](repeating: 0, count: count) }
        return scratch.withUnsafeMutableBufferPointer { buffer in
            polygons.map { polygon in
                PolygonFill.fill(polygon!, into: buffer, width: width, height: height)
                let runs = RLE.runs(of: UnsafeBufferPointer(buffer))
                for run in runs { (buffer.baseAddress! + run.start).update(repeating: 0, count: run.length) }
                return runs
            }
        }
    }

    /// Width and height from a PNG's header (reads only the start of the file when it can).
    public static func imageSize(_ path: String) throws -> (width: Int, height: Int) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw GroundTruthError(path: path, message: "cannot open")
        }
        defer { try? handle.close() }
        let prefix = [UInt8]((try? handle.read(upToCount: 1 << 16)) ?? Data())
        if let header = try? PNGCodec.readHeader(prefix) { return (header.width, header.height) }
        // Large chunks before IDAT: read it all.
        do {
            let header = try PNGCodec.readHeader(try AtomicFile.read(path))
            return (header.width, header.height)
        } catch {
            throw GroundTruthError(path: path, message: "not a readable PNG: \(error)")
        }
    }
}
