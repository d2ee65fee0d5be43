import ArgumentParser
import Foundation
import Models
import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time a model's forward pass (after a warm-up) on the engine's threads.")

    @Option(help: "Model name in the store.") var model: String
    @Option(help: "Square input side.") var size: Int = 512
    @Option(help: "Timed runs after one warm-up.") var runs: Int = 3
    @Flag(help: "Machine-readable output.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    struct Result: Codable {
        var model: String
        var encoder: String
        var size: Int
        var threads: Int
        var runs: Int
        var minSeconds: Double
        var medianSeconds: Double
        var gmacs: Double
        var gflopsPerSecond: Double
        var peakRSSMiB: Double

        enum CodingKeys: String, CodingKey {
            case model, encoder, size, threads, runs
            case minSeconds = "min_seconds", medianSeconds = "median_seconds", gmacs
            case gflopsPerSecond = "gflops_per_second", peakRSSMiB = "peak_rss_mib"
        }
    }

    func validate() throws {
        guard size > 0, size % SegmentationModel.sizeMultiple == 0 else { throw ValidationError("--size must be a positive multiple of 32") }
        guard runs > 0 else { throw ValidationError("--runs must be at least 1") }
    }

    func run() throws {
        let loaded = try storeOptions.modelStore.load(model)
        let values = DeterministicFill.uniform(name: "bench.input", count: 3 * size * size)
        let input = Tensor(shape: [1, 3, size, size], values: values)
        _ = try loaded.network.forward(input)
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try loaded.network.forward(input)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        times.sort()
        let macs = Double(loaded.network.macs(height: size, width: size))
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let result = Result(model: model, encoder: loaded.manifest.encoder.rawValue, size: size,
                            threads: ComputePool.shared.threadCount, runs: runs, minSeconds: times[0],
                            medianSeconds: times[times.count / 2], gmacs: macs / 1e9,
                            gflopsPerSecond: 2 * macs / times[0] / 1e9, peakRSSMiB: Double(usage.ru_maxrss) / 1024)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(String(format: "%@ (unetplusplus/%@) at %d², %d threads: min %.3f s, median %.3f s over %d runs; %.1f GMAC, %.1f GFLOP/s; peak RSS %.0f MiB",
                         model, result.encoder, size, result.threads, result.minSeconds, result.medianSeconds, runs,
                         result.gmacs, result.gflopsPerSecond, result.peakRSSMiB))
        }
    }
}
