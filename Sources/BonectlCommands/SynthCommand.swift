import ArgumentParser
import Foundation
import Synthesis

#if canImport(Glibc)
import Glibc
#endif

/// `bonectl synth`: a labelled data set of synthetic hand radiographs in the competition's layout.
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write synthetic hand radiographs with exact bone labels in the competition's layout.",
        discussion: """
            Writes DIR/DCM/IDnnn/image<13 digits>_R.png and _L.png (8-bit gray, two hands per ID),
            DIR/outputs_json/IDnnn/<same stem>.json (29 polygons, the competition's schema) and
            DIR/meta_data.csv. The same --seed gives byte-identical files for any --jobs.
            """)

    @Option(help: "Output folder (created if missing).") var out: String
    @Option(help: "Number of images (two per ID).") var count: Int = 20
    @Option(help: "Image side in pixels.") var size: Int = 2048
    @Option(help: "Seed: the same seed gives the same files.") var seed: UInt64 = 0
    @Option(help: "Fraction of hands turned at the wrist relative to the forearm.") var flexedFraction: Double = 0.12
    @Option(help: "Fraction of images with a ring, watch, pin, plate or nail art.") var accessoryFraction: Double = 0.05
    @Option(help: "Threads rendering in parallel.") var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count \(count): must be at least 1") }
        guard (64...8192).contains(size) else { throw ValidationError("--size \(size): must be 64…8192") }
        guard (0...1).contains(flexedFraction) else { throw ValidationError("--flexed-fraction \(flexedFraction): must be in 0…1") }
        guard (0...1).contains(accessoryFraction) else {
            throw ValidationError("--accessory-fraction \(accessoryFraction): must be in 0…1")
        }
        guard jobs >= 1 else { throw ValidationError("--jobs \(jobs): must be at least 1") }
    }

    func run() throws {
        let options = SynthOptions(size: size, seed: seed, flexedFraction: flexedFraction, accessoryFraction: accessoryFraction)
        let terminal = isatty(STDERR_FILENO) != 0
        let start = Date()
        var lastLine = -1
        do {
            try SynthDataset.generate(out: out, count: count, options: options, jobs: jobs) { done, total in
                if terminal {
                    FileHandle.standardError.write(Data("\rsynth: \(done)/\(total) images".utf8))
                    if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
                } else {
                    // Plain lines, about every tenth of the work.
                    let step = max(1, total / 10)
                    if done == total || done / step != lastLine {
                        lastLine = done / step
                        FileHandle.standardError.write(Data("synth: \(done)/\(total) images\n".utf8))
                    }
                }
            }
        } catch let error as SynthError {
            throw ValidationError(error.description)
        }
        let seconds = Date().timeIntervalSince(start)
        print("wrote \(count) images (\((count + 1) / 2) IDs) to \(out) in \(String(format: "%.1f", seconds)) s"
              + " (\(String(format: "%.2f", Double(count) / max(seconds, 1e-9))) images/s, \(jobs) jobs)")
    }
}
