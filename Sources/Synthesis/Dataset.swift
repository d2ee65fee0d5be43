import CompetitionFormat
import Foundation
import Imaging
import SystemIO

public struct SynthError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One synthetic patient: a row of meta_data.csv.
public struct SynthPatient: Sendable, Equatable {
    public let id: Int
    public let age: Double
    public let isMale: Bool
    public let weight: Double
    public let height: Double

    /// "001", as the real set numbers its patients.
    public var idString: String { id < 1000 ? String(format: "%03d", id) : String(id) }
    public var folder: String { "ID" + idString }
    /// Hand length scales with body height.
    var handScale: Double { height / 167.0 }
}

/// One image of the data set: where it goes and how it is drawn.
public struct SynthImagePlan: Sendable, Equatable {
    public let index: Int
    public let patient: SynthPatient
    public let isLeft: Bool
    /// image<13 digits>_L or _R.
    public let stem: String
}

public enum SynthDataset {
    /// The header of the real meta_data.csv (ID, age, gender, weight kg, height cm).
    public static let metadataHeader = "ID,나이,성별,체중(몸무게),키(신장)"

    /// Patients and images for `count` images, two per patient (right, then left).
    public static func plan(count: Int, seed: UInt64) -> [SynthImagePlan] {
        let patientsNeeded = (count + 1) / 2
        var plans: [SynthImagePlan] = []
        // Acquisition times like the real file names: milliseconds since 1970, one
        // patient every few minutes, the second hand a little after the first.
        var clock = SplitMix64(seed: seed, stream: 0, salt: 3)
        var time: Int64 = 1_661_130_000_000 + Int64(seed % 997) * 86_400_000
        for p in 0..<patientsNeeded {
            let patient = makePatient(id: p + 1, seed: seed)
            for hand in 0..<2 {
                let index = 2 * p + hand
                guard index < count else { break }
                time += Int64(clock.int(hand == 0 ? 90_000...400_000 : 15_000...80_000))
                let stem = "image\(time)_\(hand == 0 ? "R" : "L")"
                plans.append(SynthImagePlan(index: index, patient: patient, isLeft: hand == 1, stem: stem))
            }
        }
        return plans
    }

    static func makePatient(id: Int, seed: UInt64) -> SynthPatient {
        var rng = SplitMix64(seed: seed, stream: UInt64(id), salt: 2)
        let male = rng.chance(0.48)
        let height = male ? rng.normal(173.5, 5.8, clamp: 2.5) : rng.normal(161.5, 5.2, clamp: 2.5)
        let bmi = rng.normal(male ? 23.8 : 21.3, male ? 3.0 : 2.8, clamp: 2.5)
        let weight = min(118, max(42, bmi * height * height / 10_000))
        let age = min(69, 19 + abs(rng.normal(0, 14, clamp: 3.5)))
        return SynthPatient(id: id, age: age.rounded(), isMale: male, weight: weight.rounded(), height: height.rounded())
    }

    /// meta_data.csv in the real file's shape: the Korean header, the gender column's
    /// stray `_x0008_` prefix, one-decimal numbers, CRLF line ends.
    public static func metadataCSV(_ patients: [SynthPatient]) -> String {
        var s = metadataHeader + "\r\n"
        for p in patients {
            s += "\(p.idString),\(String(format: "%.1f", p.age)),_x0008_\(p.isMale ? "남" : "여"),"
            s += "\(String(format: "%.1f", p.weight)),\(String(format: "%.1f", p.height))\r\n"
        }
        return s
    }

    /// The annotation file for a rendered image, in the competition's schema.
    public static func annotation(for hand: RenderedHand, plan: SynthImagePlan, seed: UInt64) -> AnnotationFile {
        var rng = SplitMix64(seed: seed, stream: UInt64(plan.index), salt: 4)
        var annotations: [BoneAnnotation] = []
        for (k, name) in BoneClasses.names.enumerated() {
            let uuid = "\(rng.hex(8))-\(rng.hex(4))-4\(rng.hex(3))-\(["8", "9", "a", "b"][Int(rng.next() % 4)])\(rng.hex(3))-\(rng.hex(12))"
            annotations.append(BoneAnnotation(id: "\(k + 1)-\(uuid)", type: "poly_seg", attributes: [:],
                                              points: hand.polygons[k], label: name))
        }
        var modifier = SplitMix64(seed: seed, stream: 0, salt: 5)
        return AnnotationFile(annotations: annotations, attributes: [:], fileID: rng.hex(24),
                              filename: plan.stem + ".png",
                              parentPath: "/bonectl-synth/seed-\(seed)/\(plan.patient.folder)",
                              lastModifierID: modifier.hex(24),
                              metadata: .init(height: hand.size, width: hand.size))
    }

    public static func encodeAnnotation(_ file: AnnotationFile) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(file)
    }

    /// Renders one planned image.
    public static func render(_ plan: SynthImagePlan, options: SynthOptions) -> RenderedHand {
        Radiograph.render(options: options, stream: UInt64(plan.index) &+ 1, isLeft: plan.isLeft,
                          patientScale: plan.patient.handScale)
    }

    /// Writes the whole data set under `out`; `jobs` threads render images in parallel.
    /// `progress(done, total)` is called from the calling thread.
    public static func generate(out: String, count: Int, options: SynthOptions, jobs: Int,
                                progress: (Int, Int) -> Void = { _, _ in }) throws {
        guard count >= 1 else { throw SynthError("--count \(count): must be at least 1") }
        guard (64...8192).contains(options.size) else { throw SynthError("--size \(options.size): must be 64…8192") }
        guard (0...1).contains(options.flexedFraction) else {
            throw SynthError("--flexed-fraction \(options.flexedFraction): must be in 0…1")
        }
        guard (0...1).contains(options.accessoryFraction) else {
            throw SynthError("--accessory-fraction \(options.accessoryFraction): must be in 0…1")
        }
        guard jobs >= 1 else { throw SynthError("--jobs \(jobs): must be at least 1") }
        let plans = plan(count: count, seed: options.seed)
        var patients: [SynthPatient] = []
        for p in plans where patients.last != p.patient { patients.append(p.patient) }
        for patient in patients {
            try AtomicFile.makeDirectories(out + "/DCM/" + patient.folder)
            try AtomicFile.makeDirectories(out + "/outputs_json/" + patient.folder)
        }
        try AtomicFile.write(Array(metadataCSV(patients).utf8), to: out + "/meta_data.csv")

        let queue = WorkQueue(total: plans.count)
        var threads: [Thread] = []
        for _ in 0..<min(jobs, plans.count) {
            let thread = Thread {
                while let i = queue.take() {
                    do {
                        try writeImage(plans[i], out: out, options: options)
                        queue.finished(error: nil)
                    } catch {
                        queue.finished(error: error)
                    }
                }
                queue.workerExited()
            }
            thread.stackSize = 8 << 20
            threads.append(thread)
        }
        threads.forEach { $0.start() }
        queue.wait(workers: threads.count, progress: progress)
        if let error = queue.firstError { throw error }
    }

    static func writeImage(_ plan: SynthImagePlan, out: String, options: SynthOptions) throws {
        let hand = render(plan, options: options)
        let png = try PNGCodec.encode(pixels: hand.pixels, width: hand.size, height: hand.size, channels: 1)
        let folder = plan.patient.folder
        try AtomicFile.write(png, to: "\(out)/DCM/\(folder)/\(plan.stem).png")
        let json = try encodeAnnotation(annotation(for: hand, plan: plan, seed: options.seed))
        try AtomicFile.write(json, to: "\(out)/outputs_json/\(folder)/\(plan.stem).json")
    }
}

/// Hands out image indices to worker threads and collects their outcome.
final class WorkQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var next = 0
    private var done = 0
    private var exited = 0
    private let total: Int
    private(set) var firstError: Error?

    init(total: Int) { self.total = total }

    func take() -> Int? {
        condition.lock()
        defer { condition.unlock() }
        guard firstError == nil, next < total else { return nil }
        next += 1
        return next - 1
    }

    func finished(error: Error?) {
        condition.lock()
        done += 1
        if let error, firstError == nil { firstError = error }
        condition.broadcast()
        condition.unlock()
    }

    func workerExited() {
        condition.lock()
        exited += 1
        condition.broadcast()
        condition.unlock()
    }

    func wait(workers: Int, progress: (Int, Int) -> Void) {
        condition.lock()
        var reported = -1
        while exited < workers {
            if done != reported {
                reported = done
                let d = done
                condition.unlock()
                progress(d, total)
                condition.lock()
                continue
            }
            condition.wait()
        }
        let d = done
        condition.unlock()
        if d != reported { progress(d, total) }
    }
}
