import ArgumentParser
import Foundation
import Imaging
import Models
import Segmentation
import SystemIO
import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time a model's forward pass (after a warm-up) on the engine's threads.",
        discussion: """
        With --pipeline --image IMAGE, times the whole per-image pipeline at the model's own input size and
        splits it into the forward pass and everything else (decode, preprocess, upsample, threshold, RLE,
        CSV, overlay, sidecar), which is what the daemon adds per image.
        """)

    @Option(help: "Model name in the store.") var model: String
    @Option(help: "Square input side.") var size: Int = 512
    @Option(help: "Timed runs after one warm-up.") var runs: Int = 3
    @Flag(help: "Machine-readable output.") var json = false
    @Flag(help: "Time the whole per-image pipeline on --image instead of the forward pass alone.") var pipeline = false
    @Option(help: "The radiograph for --pipeline.") var image: String?
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
        if pipeline {
            try runPipeline()
            return
        }
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

    struct PipelineTiming: Codable {
        var model: String
        var image: String
        var width: Int
        var height: Int
        var inputSize: Int
        var runs: Int
        var forwardSeconds: Double
        var outsideForwardSeconds: Double
        var ratio: Double
        var stages: [String: Double]
        enum CodingKeys: String, CodingKey {
            case model, image, width, height, inputSize = "input_size", runs
            case forwardSeconds = "forward_seconds", outsideForwardSeconds = "outside_forward_seconds", ratio, stages
        }
    }

    /// Median per stage over the runs, after one warm-up.
    func runPipeline() throws {
        guard let image else { throw ValidationError("--pipeline needs --image IMAGE") }
        let loaded = try storeOptions.modelStore.load(model)
        let pipe = SegmentationPipeline(release: LoadedRelease(single: loaded))
        let bytes = try AtomicFile.read(image)
        var result = try pipe.process(imageBytes: bytes, imageName: image)
        var samples: [String: [Double]] = [:]
        for _ in 0..<runs {
            result = try pipe.process(imageBytes: bytes, imageName: image)
            for (stage, seconds) in result.timings { samples[stage, default: []].append(seconds) }
        }
        let stages = samples.mapValues { $0.sorted()[$0.count / 2] }
        let forward = stages["forward"] ?? 0
        let outside = stages.filter { $0.key != "forward" }.values.reduce(0, +)
        let header = try ImageCodec.readHeader(bytes)
        let timing = PipelineTiming(model: model, image: image, width: header.width, height: header.height,
                                    inputSize: loaded.manifest.inputSize, runs: runs, forwardSeconds: forward,
                                    outsideForwardSeconds: outside, ratio: outside / max(forward, 1e-9), stages: stages)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(timing), as: UTF8.self))
            return
        }
        print(String(format: "%@ %dx%d, model %@ at %d²: forward %.3f s; everything else %.3f s (%.1f%% of the forward)",
                     image, header.width, header.height, model, loaded.manifest.inputSize, forward, outside, 100 * timing.ratio))
        for (stage, seconds) in stages.sorted(by: { $0.key < $1.key }) where stage != "forward" {
            print("  " + stage.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "%.4f s", seconds))
        }
    }
}
