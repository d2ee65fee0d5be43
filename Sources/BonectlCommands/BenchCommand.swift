import ArgumentParser
import Foundation
import Imaging
import Models
import Segmentation
import SystemIO
import TensorEngine
import Training

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

        With --train-step (no --model), times one training step of a trainable UNet++ with deterministic
        weights: forward in training mode (BatchNorm batch statistics), BCE + Dice, backward, AdamW update;
        tools/bench_pytorch_train.py times the same step in PyTorch.
        """)

    @Option(help: "Model name in the store.") var model: String?
    @Option(help: "Square input side (default 512; 256 with --train-step).") var size: Int?
    @Option(help: "Timed runs after the warm-up.") var runs: Int = 3
    @Flag(help: "Time one training step (forward, BCE + Dice, backward, AdamW) instead of a forward pass.")
    var trainStep = false
    @Option(help: "Encoder for --train-step (resnet18, resnet34).") var encoder: String = "resnet34"
    @Option(help: "Images per batch for --train-step.") var batch: Int = 4
    @Option(help: "Untimed warm-up runs (--pipeline always takes at least one).") var warmup: Int = 1
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
        guard side > 0, side % SegmentationModel.sizeMultiple == 0 else { throw ValidationError("--size must be a positive multiple of 32") }
        guard runs > 0 else { throw ValidationError("--runs must be at least 1") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more") }
        if trainStep {
            guard model == nil, !pipeline else { throw ValidationError("--train-step builds its own model: drop --model and --pipeline") }
            guard TrainableUnetPlusPlus.Encoder(rawValue: encoder) != nil else {
                throw ValidationError("--encoder \(encoder) cannot be trained; choose one of \(TrainableUnetPlusPlus.Encoder.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard batch >= 2 else { throw ValidationError("--batch must be at least 2 (BatchNorm needs batch statistics)") }
        } else if model == nil {
            throw ValidationError("--model is required (or --train-step)")
        }
    }

    private var side: Int { size ?? (trainStep ? 256 : 512) }

    func run() throws {
        if trainStep {
            try runTrainStep()
            return
        }
        if pipeline {
            try runPipeline()
            return
        }
        guard let model else { throw ValidationError("--model is required") }
        let size = side
        let loaded = try storeOptions.modelStore.load(model)
        let values = DeterministicFill.uniform(name: "bench.input", count: 3 * size * size)
        let input = Tensor(shape: [1, 3, size, size], values: values)
        for _ in 0..<warmup { _ = try loaded.network.forward(input) }
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

    struct TrainStepTiming: Codable {
        var encoder: String
        var size: Int
        var batch: Int
        var threads: Int
        var runs: Int
        var warmup: Int
        var seconds: [Double]
        /// User + system CPU seconds of the process per step (both cores' work).
        var cpuSeconds: [Double]
        var minSeconds: Double
        var medianSeconds: Double
        var loss: Double
        var peakRSSMiB: Double
        enum CodingKeys: String, CodingKey {
            case encoder, size, batch, threads, runs, warmup, seconds, loss, cpuSeconds = "cpu_seconds"
            case minSeconds = "min_seconds", medianSeconds = "median_seconds", peakRSSMiB = "peak_rss_mib"
        }
    }

    /// Whole training steps (what a trainer repeats), each timed from zeroing
    /// the gradients to the end of the AdamW update, on a fixed random batch.
    func runTrainStep() throws {
        let size = side
        let trainable = try TrainableUnetPlusPlus.deterministic(encoder: TrainableUnetPlusPlus.Encoder(rawValue: encoder)!)
        let input = Tensor(shape: [batch, 3, size, size],
                           values: DeterministicFill.uniform(name: "bench.train.input", count: batch * 3 * size * size))
        // Sparse 0/1 masks, roughly a bone's share of the image per class.
        let targets = Tensor(shape: [batch, trainable.classes, size, size],
                             values: DeterministicFill.uniform(name: "bench.train.targets", count: batch * trainable.classes * size * size)
                                 .map { $0 < 0.05 ? 1 : 0 })
        let optimizer = AdamW(parameters: trainable.parameters, learningRate: 1e-4)
        var loss = 0.0
        for _ in 0..<warmup { loss = try trainable.trainStep(input: input, targets: targets, optimizer: optimizer).loss }
        func cpuSeconds() -> Double {
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
                + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        }
        var times: [Double] = [], cpu: [Double] = []
        for _ in 0..<runs {
            let (start, cpuStart) = (DispatchTime.now().uptimeNanoseconds, cpuSeconds())
            loss = try trainable.trainStep(input: input, targets: targets, optimizer: optimizer).loss
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            cpu.append(cpuSeconds() - cpuStart)
        }
        let sorted = times.sorted()
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let timing = TrainStepTiming(encoder: encoder, size: size, batch: batch, threads: ComputePool.shared.threadCount,
                                     runs: runs, warmup: warmup, seconds: times, cpuSeconds: cpu, minSeconds: sorted[0],
                                     medianSeconds: sorted[sorted.count / 2], loss: loss,
                                     peakRSSMiB: Double(usage.ru_maxrss) / 1024)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(timing), as: UTF8.self))
        } else {
            print(String(format: "train step unetplusplus/%@ at %d², batch %d, %d threads: min %.3f s, median %.3f s over %d runs (median CPU %.2f s; loss %.4f); peak RSS %.0f MiB",
                         encoder, size, batch, timing.threads, timing.minSeconds, timing.medianSeconds, runs,
                         cpu.sorted()[cpu.count / 2], loss, timing.peakRSSMiB))
        }
    }

    /// Median per stage over the runs, after the warm-up.
    func runPipeline() throws {
        guard let image, let model else { throw ValidationError("--pipeline needs --model and --image IMAGE") }
        let loaded = try storeOptions.modelStore.load(model)
        let pipe = SegmentationPipeline(release: LoadedRelease(single: loaded))
        let bytes = try AtomicFile.read(image)
        var result = try pipe.process(imageBytes: bytes, imageName: image)
        for _ in 1..<max(warmup, 1) { result = try pipe.process(imageBytes: bytes, imageName: image) }
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
