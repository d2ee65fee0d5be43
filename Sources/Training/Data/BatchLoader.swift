import CompetitionFormat
import Foundation
import Imaging
import Models
import Segmentation
import SystemIO
import TensorEngine

/// Network inputs and targets for a few images.
public struct TrainingBatch: Sendable {
    /// [N, 3, S, S], normalised as Segmentation's `Preprocessing` prepares inference inputs.
    public let input: Tensor
    /// [N, 29, S, S] of 0/1, channels in the competition's class order (`BoneClasses`).
    public let target: Tensor
    public let names: [String]

    public init(input: Tensor, target: Tensor, names: [String]) {
        self.input = input
        self.target = target
        self.names = names
    }
}

/// One epoch of batches, prepared ahead on the loader's own threads (Foundation
/// `Thread`s: not Swift's cooperative pool and not `ComputePool.shared`, which
/// the training step keeps busy), so decoding and augmentation overlap the step.
///
/// The epoch's order is a shuffle keyed by (seed, epoch) and each image's
/// augmentation is keyed by (seed, epoch, name), so the same arguments give
/// the same bytes whatever the thread timing. An image that fails to decode is
/// recorded in `problems` and left out of its batch (the batch is smaller; a
/// batch whose images all fail is skipped), and the epoch goes on.
public final class BatchLoader: @unchecked Sendable {
    /// The images in this epoch's order.
    public let order: [LabelledImage]
    public let size: Int
    public let batchSize: Int
    /// Batches this epoch (the last may be partial).
    public var count: Int { state.count }
    /// Images that failed to load so far this epoch, in the order they were met.
    public var problems: [DataProblem] { state.locked { $0.problems.sorted { $0.index < $1.index }.map(\.problem) } }

    private let state: LoaderState

    /// - Parameters:
    ///   - prefetch: batches prepared ahead of the one being consumed.
    ///   - workers: loader threads; one keeps up with a CPU training step (a 2048² PNG takes
    ///     about 50–60 ms to decode, mask and augment to 256², a step of 4 images seconds).
    public init(images: [LabelledImage], size: Int, batchSize: Int, augmentation: Augmentation, seed: UInt64,
                epoch: Int, shuffle: Bool, normalization: Normalization, prefetch: Int = 2, workers: Int = 1) {
        precondition(size > 0 && batchSize > 0, "size and batch size must be positive")
        var order = images
        if shuffle {
            var random = DataRandom(seed, UInt64(bitPattern: Int64(epoch)), 0x5348_5546)  // "SHUF"
            random.shuffle(&order)
        }
        self.order = order
        self.size = size
        self.batchSize = batchSize
        let recipe = SampleRecipe(size: size, augmentation: augmentation, seed: seed, epoch: epoch,
                                  normalization: normalization)
        state = LoaderState(count: (order.count + batchSize - 1) / batchSize, prefetch: max(1, prefetch))
        let state = self.state, shuffled = order
        for w in 0..<max(1, min(workers, state.count)) {
            let thread = Thread {
                Thread.current.threadDictionary[LoaderState.workerKey] = w
                var scratch: [UInt8] = []
                while let b = state.claim() {
                    let lo = b * batchSize, hi = min(lo + batchSize, shuffled.count)
                    var samples: [Sample] = []
                    var failures: [(Int, DataProblem)] = []
                    for i in lo..<hi {
                        if state.isCancelled { break }
                        do {
                            samples.append(try recipe.prepare(shuffled[i], scratch: &scratch))
                        } catch {
                            failures.append((i, DataProblem(file: "DCM/" + shuffled[i].name, problem: "\(error)")))
                        }
                    }
                    state.deliver(b, batch: Self.assemble(samples, size: size), failures: failures)
                }
            }
            thread.name = "bonesegd-data-\(w)"
            thread.stackSize = 4 << 20
            thread.start()
        }
    }

    deinit { state.cancel() }

    /// The next batch, waiting for it when the loader is behind; nil after the last.
    public func next() -> TrainingBatch? { state.next() }

    /// Batches already prepared and waiting (for tests and progress displays).
    public var ready: Int { state.locked { $0.ready.count } }

    /// The loader threads (numbered from 0) that prepared this epoch's batches so far; -1 would mean another thread.
    var producerThreads: Set<Int> { state.locked { $0.producers } }

    /// Stops the loader's threads after the image each is working on.
    public func cancel() { state.cancel() }

    /// One image as the loader prepares it: a batch of one. With `.none` the
    /// input is exactly `Preprocessing.input(for:size:normalize:)` of the image.
    public static func load(_ image: LabelledImage, size: Int, augmentation: Augmentation = .none, seed: UInt64 = 0,
                            epoch: Int = 0, normalization: Normalization) throws -> TrainingBatch {
        var scratch: [UInt8] = []
        let recipe = SampleRecipe(size: size, augmentation: augmentation, seed: seed, epoch: epoch, normalization: normalization)
        return assemble([try recipe.prepare(image, scratch: &scratch)], size: size)!
    }

    static func assemble(_ samples: [Sample], size: Int) -> TrainingBatch? {
        guard !samples.isEmpty else { return nil }
        let plane = size * size
        let input = Tensor(shape: [samples.count, 3, size, size])
        let target = Tensor(shape: [samples.count, BoneClasses.count, size, size])
        for (n, s) in samples.enumerated() {
            (input.storage + n * 3 * plane).update(from: s.input.storage, count: 3 * plane)
            s.target.withUnsafeBufferPointer { (target.storage + n * BoneClasses.count * plane).update(from: $0.baseAddress!, count: $0.count) }
        }
        return TrainingBatch(input: input, target: target, names: samples.map(\.name))
    }
}

/// What the consumer and the loader threads share.
final class LoaderState: @unchecked Sendable {
    struct Shared {
        var nextToMake = 0
        var consumed = 0
        var ready: [Int: TrainingBatch?] = [:]
        var problems: [(index: Int, problem: DataProblem)] = []
        var cancelled = false
        /// The loader threads (by number) that prepared batches; -1 for any other thread.
        var producers: Set<Int> = []
    }

    let count: Int
    let prefetch: Int
    private let condition = NSCondition()
    private var shared = Shared()

    init(count: Int, prefetch: Int) {
        self.count = count
        self.prefetch = prefetch
    }

    func locked<R>(_ body: (inout Shared) -> R) -> R {
        condition.lock()
        defer { condition.unlock() }
        return body(&shared)
    }

    var isCancelled: Bool { locked { $0.cancelled } }

    /// The next batch index to prepare, once it is within `prefetch` of the consumer; nil when done.
    func claim() -> Int? {
        condition.lock()
        defer { condition.unlock() }
        while !shared.cancelled && shared.nextToMake < count && shared.nextToMake >= shared.consumed + prefetch {
            condition.wait()
        }
        guard !shared.cancelled, shared.nextToMake < count else { return nil }
        shared.nextToMake += 1
        return shared.nextToMake - 1
    }

    /// Marks the loader's own threads (Thread.name is not reliable on Linux Foundation).
    static let workerKey = "bonesegd.data.worker"

    func deliver(_ index: Int, batch: TrainingBatch?, failures: [(Int, DataProblem)]) {
        let worker = Thread.current.threadDictionary[Self.workerKey] as? Int ?? -1
        condition.lock()
        shared.producers.insert(worker)
        shared.ready[index] = .some(batch)
        shared.problems += failures.map { (index: $0.0, problem: $0.1) }
        condition.broadcast()
        condition.unlock()
    }

    func next() -> TrainingBatch? {
        condition.lock()
        defer { condition.unlock() }
        while shared.consumed < count && !shared.cancelled {
            let index = shared.consumed
            while shared.ready[index] == nil && !shared.cancelled { condition.wait() }
            guard let entry = shared.ready.removeValue(forKey: index) else { return nil }
            shared.consumed += 1
            condition.broadcast()
            if let batch = entry { return batch }
        }
        return nil
    }

    func cancel() {
        condition.lock()
        shared.cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}

/// One prepared image.
struct Sample {
    let name: String
    /// [1, 3, S, S]
    let input: Tensor
    /// 29 planes of S×S, 0 or 1.
    let target: [Float]
}

/// How every image of a loader is turned into a sample.
struct SampleRecipe: Sendable {
    let size: Int
    let augmentation: Augmentation
    let seed: UInt64
    let epoch: Int
    let normalization: Normalization

    /// Decode → gray → resize to S×S (Preprocessing's bilinear) → augment the
    /// gray plane and the mask coverages with one warp → masks ≥ 0.5 →
    /// Preprocessing's normalisation and replication.
    func prepare(_ image: LabelledImage, scratch: inout [UInt8]) throws -> Sample {
        let bytes: [UInt8]
        do {
            bytes = try AtomicFile.read(image.imageURL.path)
        } catch let error as FileError {
            throw SampleError("cannot read: \(error.operation) failed (\(String(cString: strerror(error.code))))")
        }
        let gray: GrayImage
        do {
            gray = try ImageCodec.decode(bytes).grayscale()
        } catch {
            throw SampleError("cannot decode: \(error)")
        }
        let annotation: AnnotationFile
        do {
            annotation = try AnnotationFile.read(path: image.annotationURL.path)
        } catch let error as AnnotationError {
            throw SampleError("annotation \(image.annotationURL.lastPathComponent): \(error.message)")
        }
        let plane = size * size
        var coverage = TargetMasks.coverage(annotation.polygonsByClass(), width: gray.width, height: gray.height,
                                            size: size, scratch: &scratch)
        var pixels = Self.resize(gray, size: size)

        if !augmentation.isIdentity {
            var random = DataRandom(seed, UInt64(bitPattern: Int64(epoch)), DataRandom.hash(image.name))
            let draw = AugmentationDraw(augmentation, size: size, random: &random)
            if draw.isGeometric {
                let warp = WarpMap(draw, size: size)
                var warped = [Float](repeating: 0, count: plane)
                pixels.withUnsafeBufferPointer { src in
                    warped.withUnsafeMutableBufferPointer { warp.apply(src.baseAddress!, to: $0.baseAddress!) }
                }
                pixels = warped
                var warpedMasks = [Float](repeating: 0, count: coverage.count)
                coverage.withUnsafeBufferPointer { src in
                    warpedMasks.withUnsafeMutableBufferPointer { dst in
                        for k in 0..<BoneClasses.count {
                            warp.apply(src.baseAddress! + k * plane, to: dst.baseAddress! + k * plane)
                        }
                    }
                }
                coverage = warpedMasks
            }
            if draw.localContrast {
                let bytes = pixels.map { UInt8(max(0, min(255, $0.rounded()))) }
                let tiles = max(1, augmentation.localContrastTiles)
                pixels = LocalContrast.clahe(bytes, width: size, height: size, clipLimit: augmentation.localContrastClipLimit,
                                             tilesX: tiles, tilesY: tiles).map(Float.init)
            }
            if draw.contrast != 1 || draw.brightness != 0 {
                let mean = Float(pixels.reduce(0.0) { $0 + Double($1) } / Double(plane))
                let gain = Float(draw.contrast), shift = Float(draw.brightness)
                for i in 0..<plane { pixels[i] = max(0, min(255, (pixels[i] - mean) * gain + mean + shift)) }
            }
        }

        let target = coverage.map { $0 >= 0.5 ? Float(1) : 0 }
        // Same-size input: Preprocessing only normalises and replicates.
        let input = Preprocessing.input(for: GrayImage(width: size, height: size, pixels: pixels), size: size,
                                        normalize: normalization)
        return Sample(name: image.name, input: input, target: target)
    }

    /// The gray plane at S×S by the same bilinear resize Preprocessing uses.
    static func resize(_ gray: GrayImage, size: Int) -> [Float] {
        if gray.width == size && gray.height == size { return gray.pixels }
        var out = [Float](repeating: 0, count: size * size)
        let xs = BilinearAxis(inSize: gray.width, outSize: size), ys = BilinearAxis(inSize: gray.height, outSize: size)
        gray.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                Ops.resizePlane(src: src.baseAddress!, width: gray.width, dst: dst.baseAddress!, outWidth: size,
                                outHeight: size, xs: xs, ys: ys)
            }
        }
        return out
    }
}

struct SampleError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
