import ArgumentParser
import CompetitionFormat
import Foundation
import Imaging
import Models
import Segmentation
import SystemIO
import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

extension TestTimeAugmentation: ExpressibleByArgument {}
extension CombineMode: ExpressibleByArgument {}
extension SoftAverage: ExpressibleByArgument {}

struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Segment radiographs: per image <stem>.csv, <stem>.overlay.png and <stem>.json, plus submission.csv.",
        discussion: """
        Folders are searched recursively for .png, .jpg and .jpeg files (dotfiles skipped) and their
        subfolders are mirrored under --out. A file that cannot be read or segmented is reported on one
        line and skipped; the exit status is non-zero if any failed. Each output file is complete or absent.
        """)

    @Argument(help: "Radiographs (PNG or JPEG) or folders of them.") var inputs: [String]
    @Option(help: "Run one model from the store.") var model: String?
    @Option(help: "Run a release (an ensemble) from the releases folder beside the store.") var release: String?
    @Option(help: "Folder for the results.") var out: String?
    @Option(help: "Test-time augmentation: none or hflip (original and mirror, logits averaged).") var tta: TestTimeAugmentation?
    @Option(help: "Also write the members' mean logits (after TTA) at model resolution as .npy, float32 [1, C, H, W]; one image only.") var logits: String?
    @Option(name: .customLong("overlay-scale"), help: "Scale of the overlay PNG relative to the input.") var overlayScale: Double = 1
    @Option(name: .customLong("max-side"), help: "Largest accepted image side, checked before decoding.") var maxSide: Int = PNGCodec.defaultMaxSide
    @Flag(help: "Print a JSON summary instead of the table.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        guard (model == nil) != (release == nil) else { throw ValidationError("give exactly one of --model or --release") }
        guard out != nil || logits != nil else { throw ValidationError("give --out DIR (and/or --logits OUT.npy)") }
        guard overlayScale > 0, overlayScale <= 4 else { throw ValidationError("--overlay-scale must be in (0, 4]") }
    }

    struct ImageSummary: Codable {
        var input: String
        var outputs: [String]
        var classPixels: [Int]
        var flags: [QualityFlags.Flag]
        var timings: [String: Double]
        var error: String?
        enum CodingKeys: String, CodingKey { case input, outputs, classPixels = "class_pixels", flags, timings, error }
    }

    func run() throws {
        let store = storeOptions.modelStore
        var loaded: LoadedRelease
        if let model {
            loaded = LoadedRelease(single: try store.load(model), tta: tta ?? .none)
        } else {
            loaded = try ReleaseStore(beside: store).load(release!)
            if let tta {
                var manifest = loaded.manifest
                manifest.tta = tta
                loaded = LoadedRelease(manifest: manifest, members: loaded.members)
            }
        }
        let jobs = try InputFiles.collect(inputs)
        guard !jobs.isEmpty else { throw ValidationError("no .png, .jpg or .jpeg files in \(inputs.joined(separator: " "))") }
        if logits != nil && jobs.count != 1 { throw ValidationError("--logits takes exactly one image, got \(jobs.count)") }
        let pipeline = SegmentationPipeline(release: loaded, maxSide: maxSide, overlayScale: overlayScale)
        if let out { try AtomicFile.makeDirectories(out) }

        var progress = Progress(total: jobs.count, enabled: !json && isatty(STDERR_FILENO) != 0)
        var summaries: [ImageSummary] = []
        var allRows: [SubmissionRow] = []
        var failures = 0
        for job in jobs {
            progress.show(job.relativePath)
            do {
                let summary = try segment(job, pipeline: pipeline, rows: &allRows)
                summaries.append(summary)
            } catch {
                failures += 1
                let message = "\(job.path): \(Self.describe(error))"
                progress.clear()
                FileHandle.standardError.write(Data(("bonectl segment: " + message + "\n").utf8))
                summaries.append(ImageSummary(input: job.path, outputs: [], classPixels: [], flags: [], timings: [:], error: message))
            }
        }
        progress.finish()
        if let out, !allRows.isEmpty {
            try SubmissionCSV.write(allRows, to: "\(out)/submission.csv")
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(summaries), as: UTF8.self))
        } else {
            for s in summaries where s.error == nil && out == nil {
                print("\(s.input): logits in \(s.outputs.joined(separator: ", "))")
            }
            for s in summaries where s.error == nil && out != nil {
                let empty = s.flags.filter { $0.kind == "empty" }.count
                let unusual = s.flags.filter { $0.kind == "unusual_area" }.count
                let total = s.timings.values.reduce(0, +)
                print(String(format: "%@: %d classes found, %d empty, %d unusual areas, %.2f s", s.input,
                             s.classPixels.filter { $0 > 0 }.count, empty, unusual, total))
            }
            if let out, !allRows.isEmpty { print("wrote \(summaries.count - failures) result sets and \(out)/submission.csv") }
        }
        if failures > 0 { throw ExitCode(1) }
    }

    private func segment(_ job: InputFiles.Job, pipeline: SegmentationPipeline, rows: inout [SubmissionRow]) throws -> ImageSummary {
        let bytes = try AtomicFile.read(job.path)
        var outputs: [String] = []
        var classPixels: [Int] = []
        var flags: [QualityFlags.Flag] = []
        var timings: [String: Double] = [:]
        if let logitsPath = logits, out == nil {
            try AtomicFile.write(NumPyFile.encode(try pipeline.combinedLogits(imageBytes: bytes)), to: logitsPath)
            outputs.append(logitsPath)
        }
        if let out {
            let result = try pipeline.process(imageBytes: bytes, imageName: job.path, keepLogits: logits != nil)
            let folder = job.relativeFolder.isEmpty ? out : "\(out)/\(job.relativeFolder)"
            try AtomicFile.makeDirectories(folder)
            let files = [("\(folder)/\(job.stem).csv", result.csv), ("\(folder)/\(job.stem).overlay.png", result.overlayPNG),
                         ("\(folder)/\(job.stem).json", result.sidecarJSON)]
            do {
                for (path, data) in files { try AtomicFile.write(data, to: path) }
            } catch {
                // A result set is whole or absent.
                for (path, _) in files { unlink(path) }
                throw error
            }
            outputs += files.map(\.0)
            if let logitsPath = logits, let combined = result.logits {
                try AtomicFile.write(NumPyFile.encode(combined), to: logitsPath)
                outputs.append(logitsPath)
            }
            rows += result.rows
            classPixels = result.classAreas
            flags = result.flags
            timings = result.timings
        }
        return ImageSummary(input: job.path, outputs: outputs, classPixels: classPixels, flags: flags, timings: timings, error: nil)
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case let e as ImageDecodeError: return e.message
        case let e as FileError: return e.description
        default: return "\(error)"
        }
    }
}

/// The images named on a command line: files as given, folders searched recursively.
enum InputFiles {
    struct Job {
        var path: String
        /// Subfolder below the folder it was found in ("" for files named directly).
        var relativeFolder: String
        var stem: String
        var relativePath: String { relativeFolder.isEmpty ? stem : "\(relativeFolder)/\(stem)" }
    }

    static let extensions: Set<String> = ["png", "jpg", "jpeg"]

    static func collect(_ inputs: [String]) throws -> [Job] {
        var jobs: [Job] = []
        for input in inputs {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else {
                throw ValidationError("\(input): no such file or folder")
            }
            if !isDirectory.boolValue {
                jobs.append(Job(path: input, relativeFolder: "", stem: stem(of: input)))
                continue
            }
            guard let walker = FileManager.default.enumerator(atPath: input) else { continue }
            var found: [String] = []
            while let relative = walker.nextObject() as? String {
                let name = (relative as NSString).lastPathComponent
                if name.hasPrefix(".") { continue }
                if extensions.contains((name as NSString).pathExtension.lowercased()) { found.append(relative) }
            }
            for relative in found.sorted() {
                jobs.append(Job(path: "\(input)/\(relative)", relativeFolder: (relative as NSString).deletingLastPathComponent,
                                stem: stem(of: relative)))
            }
        }
        return jobs
    }

    static func stem(of path: String) -> String {
        ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    }
}

/// A one-line progress bar on a terminal; nothing otherwise.
struct Progress {
    let total: Int
    let enabled: Bool
    var done = 0

    mutating func show(_ label: String) {
        guard enabled else { return }
        let width = 30
        let filled = total == 0 ? width : width * done / total
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        FileHandle.standardError.write(Data("\r\u{1B}[K[\(bar)] \(done)/\(total) \(label)".utf8))
        done += 1
    }

    func clear() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    func finish() { clear() }
}
