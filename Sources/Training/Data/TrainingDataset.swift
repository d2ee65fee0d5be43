import CompetitionFormat
import Foundation
import Imaging

/// One radiograph with its annotation, in the competition's layout.
public struct LabelledImage: Sendable, Hashable {
    /// "ID001": the folder under DCM/.
    public let patient: String
    /// "ID001/image1661130828152_R.png": the path under DCM/ (the competition's image name).
    public let name: String
    public let imageURL: URL
    /// outputs_json/ID001/image1661130828152_R.json
    public let annotationURL: URL

    public init(patient: String, name: String, imageURL: URL, annotationURL: URL) {
        self.patient = patient
        self.name = name
        self.imageURL = imageURL
        self.annotationURL = annotationURL
    }
}

/// A file left out of training and why.
public struct DataProblem: Sendable, Hashable, CustomStringConvertible {
    /// The path as the user knows it (relative to the data folder).
    public let file: String
    /// One line.
    public let problem: String

    public init(file: String, problem: String) {
        self.file = file
        // One line whatever a decoder's message holds.
        self.problem = problem.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    public var description: String { "\(file): \(problem)" }
}

/// The data folder cannot be trained on at all: "<dir>: reason".
public struct TrainingDataError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The labelled images of a folder in the competition layout
/// (`DCM/IDxxx/*.png` with `outputs_json/IDxxx/*.json`), after checking each
/// pair: the image header is readable, the annotation parses and passes
/// `AnnotationHygiene`. Everything left out is listed in `problems`.
public struct TrainingDataset: Sendable {
    public let root: URL
    /// Usable images, sorted by name.
    public let images: [LabelledImage]
    /// Every excluded file with its reason, sorted by file.
    public let problems: [DataProblem]

    public init(root: URL, images: [LabelledImage], problems: [DataProblem]) {
        self.root = root
        self.images = images
        self.problems = problems
    }

    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

    /// Scans a data folder. Throws `TrainingDataError` when the folder is missing
    /// or unreadable, lacks DCM/ or outputs_json/, or holds no usable image.
    public static func scan(_ root: URL) throws -> TrainingDataset {
        let dir = root.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) else {
            throw TrainingDataError("\(dir): no such folder")
        }
        guard isDirectory.boolValue else { throw TrainingDataError("\(dir): not a folder") }
        guard FileManager.default.isReadableFile(atPath: dir), (try? FileManager.default.contentsOfDirectory(atPath: dir)) != nil else {
            throw TrainingDataError("\(dir): cannot read the folder (permissions?)")
        }
        let layout = "expected DCM/IDxxx/*.png and outputs_json/IDxxx/*.json"
        for sub in ["DCM", "outputs_json"] {
            let path = root.appendingPathComponent(sub).path
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw TrainingDataError("\(dir): no \(sub)/ folder (\(layout))")
            }
            guard (try? FileManager.default.contentsOfDirectory(atPath: path)) != nil else {
                throw TrainingDataError("\(dir): cannot read \(sub)/ (permissions?)")
            }
        }

        var problems: [DataProblem] = []
        // Images and annotations by their path under DCM/ or outputs_json/ without extension.
        var imageByKey: [String: String] = [:]
        for file in files(under: root.appendingPathComponent("DCM")) {
            let ext = (file as NSString).pathExtension.lowercased()
            guard imageExtensions.contains(ext) else {
                problems.append(DataProblem(file: "DCM/" + file, problem: "not a .png or .jpg image; ignored"))
                continue
            }
            let key = (file as NSString).deletingPathExtension
            if let other = imageByKey[key] {
                problems.append(DataProblem(file: "DCM/" + file, problem: "DCM/\(other) has the same name; this one is left out"))
                continue
            }
            imageByKey[key] = file
        }
        var annotationByKey: [String: String] = [:]
        for file in files(under: root.appendingPathComponent("outputs_json")) {
            guard (file as NSString).pathExtension.lowercased() == "json" else {
                problems.append(DataProblem(file: "outputs_json/" + file, problem: "not a .json annotation; ignored"))
                continue
            }
            annotationByKey[(file as NSString).deletingPathExtension] = file
        }
        for (key, file) in annotationByKey where imageByKey[key] == nil {
            problems.append(DataProblem(file: "outputs_json/" + file, problem: "no image for this annotation (DCM/\(key).png is missing)"))
        }

        // Each pair is checked on its own; JSON decoding dominates, so two threads share the work.
        let keys = imageByKey.keys.sorted()
        var outcomes = [ScanOutcome?](repeating: nil, count: keys.count)
        outcomes.withUnsafeMutableBufferPointer { slots in
            let out = UncheckedBuffer(slots)
            let imageByKey = imageByKey, annotationByKey = annotationByKey
            DataThreads.run(count: keys.count, workers: 2) { i in
                out[i] = check(root: root, imageFile: imageByKey[keys[i]]!, annotationFile: annotationByKey[keys[i]])
            }
        }
        var images: [LabelledImage] = []
        for outcome in outcomes {
            switch outcome! {
            case .usable(let image): images.append(image)
            case .excluded(let problem): problems.append(problem)
            }
        }
        problems.sort { ($0.file, $0.problem) < ($1.file, $1.problem) }
        guard !images.isEmpty else {
            let first = problems.first.map { "; first: \($0)" } ?? ""
            throw TrainingDataError("\(dir): no usable labelled image (\(problems.count) problem\(problems.count == 1 ? "" : "s")\(first))")
        }
        images.sort { $0.name < $1.name }
        return TrainingDataset(root: root, images: images, problems: problems)
    }

    enum ScanOutcome: Sendable {
        case usable(LabelledImage)
        case excluded(DataProblem)
    }

    /// One image and its annotation: header, JSON, hygiene.
    static func check(root: URL, imageFile: String, annotationFile: String?) -> ScanOutcome {
        let imageShown = "DCM/" + imageFile
        let components = imageFile.split(separator: "/")
        guard components.count >= 2 else {
            return .excluded(DataProblem(file: imageShown, problem: "not in a patient folder (expected DCM/IDxxx/\(imageFile))"))
        }
        let key = (imageFile as NSString).deletingPathExtension
        guard let annotationFile else {
            return .excluded(DataProblem(file: imageShown, problem: "no annotation (outputs_json/\(key).json is missing)"))
        }
        let imageURL = root.appendingPathComponent("DCM").appendingPathComponent(imageFile)
        let annotationURL = root.appendingPathComponent("outputs_json").appendingPathComponent(annotationFile)
        let header: ImageHeader
        do {
            header = try readHeader(imageURL.path)
        } catch {
            return .excluded(DataProblem(file: imageShown, problem: "not a readable image: \(error)"))
        }
        guard header.width <= PNGCodec.defaultMaxSide && header.height <= PNGCodec.defaultMaxSide else {
            return .excluded(DataProblem(file: imageShown, problem: "\(header.width)×\(header.height) is larger than \(PNGCodec.defaultMaxSide) a side"))
        }
        let annotationShown = "outputs_json/" + annotationFile
        let annotation: AnnotationFile
        do {
            annotation = try AnnotationFile.read(path: annotationURL.path)
        } catch let error as AnnotationError {
            return .excluded(DataProblem(file: annotationShown, problem: error.message))
        } catch {
            return .excluded(DataProblem(file: annotationShown, problem: "\(error)"))
        }
        let faults = AnnotationHygiene.problems(annotation, width: header.width, height: header.height)
        if !faults.isEmpty {
            let shown = faults.prefix(3).joined(separator: "; ") + (faults.count > 3 ? "; and \(faults.count - 3) more" : "")
            return .excluded(DataProblem(file: annotationShown, problem: "left out: \(shown)"))
        }
        return .usable(LabelledImage(patient: String(components[0]), name: imageFile, imageURL: imageURL,
                                      annotationURL: annotationURL))
    }

    /// The image header from the start of the file (the whole file when a JPEG's
    /// frame header comes after large metadata).
    static func readHeader(_ path: String) throws -> ImageHeader {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ImageDecodeError("cannot open the file")
        }
        defer { try? handle.close() }
        let prefix = [UInt8]((try handle.read(upToCount: 1 << 16)) ?? Data())
        do {
            return try ImageCodec.readHeader(prefix)
        } catch {
            guard prefix.count == 1 << 16, let rest = try handle.readToEnd() else { throw error }
            return try ImageCodec.readHeader(prefix + [UInt8](rest))
        }
    }

    /// Regular files under a folder, relative and sorted; dotfiles and
    /// unfinished copies (`*.part`, `*.tmp`) are skipped.
    static func files(under url: URL) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: url.path) else { return [] }
        var out: [String] = []
        while let entry = walker.nextObject() as? String {
            let name = (entry as NSString).lastPathComponent
            if name.hasPrefix(".") {
                if (walker.fileAttributes?[.type] as? FileAttributeType) == .typeDirectory { walker.skipDescendants() }
                continue
            }
            if name.hasSuffix(".part") || name.hasSuffix(".tmp") { continue }
            switch walker.fileAttributes?[.type] as? FileAttributeType {
            case .typeRegular?:
                out.append(entry)
            case .typeSymbolicLink?:
                // Data sets are often links into an archive: follow links to files.
                var isDirectory: ObjCBool = false
                let target = url.appendingPathComponent(entry).path
                if FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory), !isDirectory.boolValue {
                    out.append(entry)
                }
            default:
                continue
            }
        }
        return out.sorted()
    }

    /// Train and validation images, grouped by patient so both hands of a
    /// patient land on the same side. Each patient's side comes from a hash of
    /// (seed, patient), not from a shuffle of the whole list, so adding new
    /// patients leaves the existing ones mostly where they were and nightly
    /// retrains compare on nearly the same validation set. About
    /// `validationFraction` of the patients validate, at least one on each side
    /// when there are two or more patients (none when the fraction is 0).
    public func split(validationFraction: Double = 0.2, seed: UInt64 = 0) -> (train: [LabelledImage], validation: [LabelledImage]) {
        let patients = Array(Set(images.map(\.patient))).sorted()
        var count = Int((validationFraction * Double(patients.count)).rounded())
        if validationFraction > 0 && patients.count >= 2 { count = min(max(count, 1), patients.count - 1) }
        if patients.count < 2 { count = 0 }
        let ranked = patients.sorted {
            let a = DataRandom.mix(seed ^ DataRandom.hash($0)), b = DataRandom.mix(seed ^ DataRandom.hash($1))
            return a != b ? a < b : $0 < $1
        }
        let validation = Set(ranked.prefix(count))
        return (images.filter { !validation.contains($0.patient) }, images.filter { validation.contains($0.patient) })
    }
}

/// A buffer that worker threads write at distinct indices.
struct UncheckedBuffer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ buffer: UnsafeMutableBufferPointer<T>) { base = buffer.baseAddress! }
    subscript(i: Int) -> T {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }
}

/// Work spread over Foundation threads this module starts (never Swift's
/// cooperative pool, never the compute pool the training step uses).
enum DataThreads {
    /// Runs body(0..<count) on up to `workers` threads and returns when all are done.
    static func run(count: Int, workers: Int, _ body: @escaping @Sendable (Int) -> Void) {
        guard count > 0 else { return }
        let threads = max(1, min(workers, count))
        let state = Counter()
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<threads {
            let thread = Thread {
                while let i = state.take(below: count) { body(i) }
                done.signal()
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
        for _ in 0..<threads { done.wait() }
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var next = 0
        func take(below count: Int) -> Int? {
            lock.lock()
            defer { lock.unlock() }
            guard next < count else { return nil }
            next += 1
            return next - 1
        }
    }
}
