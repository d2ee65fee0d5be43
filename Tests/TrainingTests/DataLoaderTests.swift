import CompetitionFormat
import Foundation
import Imaging
import Models
import Segmentation
import TensorEngine
import TestSupport
import Testing
@testable import Training

private func scan(_ folder: TemporaryFolder) throws -> TrainingDataset {
    try TrainingDataset.scan(URL(fileURLWithPath: folder.path))
}

private func epoch(_ loader: BatchLoader) -> [TrainingBatch] {
    var out: [TrainingBatch] = []
    while let b = loader.next() { out.append(b) }
    return out
}

@Suite("DataLoader") struct DataLoaderTests {
    @Test func batchesHaveTheTrainerShapesAndInferencePreprocessing() throws {
        let folder = try DataFixtures.phantoms(count: 6, size: 256, seed: 2)
        let images = try scan(folder).images
        let loader = BatchLoader(images: images, size: 64, batchSize: 4, augmentation: .none, seed: 0, epoch: 0,
                                 shuffle: false, normalization: .imagenet)
        #expect(loader.count == 2)
        let batches = epoch(loader)
        #expect(loader.next() == nil && loader.next() == nil)
        #expect(batches.map(\.input.shape) == [[4, 3, 64, 64], [2, 3, 64, 64]])
        #expect(batches.map(\.target.shape) == [[4, 29, 64, 64], [2, 29, 64, 64]])
        #expect(batches.flatMap(\.names) == images.map(\.name))
        #expect(loader.problems == [])
        // Without augmentation the input is exactly what inference feeds the network.
        for (i, image) in images.enumerated() {
            let gray = try ImageCodec.decode(Array(try Data(contentsOf: image.imageURL))).grayscale()
            let expected = Preprocessing.input(for: gray, size: 64, normalize: .imagenet)
            let batch = batches[i / 4], n = i % 4, count = 3 * 64 * 64
            #expect(Array(UnsafeBufferPointer(start: batch.input.storage + n * count, count: count)) == expected.array, "\(image.name)")
        }
        for b in batches { #expect(b.target.array.allSatisfy { $0 == 0 || $0 == 1 }) }
    }

    /// Targets are GroundTruth's masks: identical at full resolution (Dice 1 for
    /// every class), and at the training size each pixel is 1 exactly when the
    /// bone covers at least half of its 4×4 block (counted here from GroundTruth's runs).
    @Test func targetsAreGroundTruthMasks() throws {
        let folder = try DataFixtures.phantoms(count: 4, size: 256, seed: 8)
        let images = try scan(folder).images
        let truth = try GroundTruth.load(directory: folder.path)
        #expect(truth.count == 4)
        let batch = epoch(BatchLoader(images: images, size: 64, batchSize: 4, augmentation: .none, seed: 0, epoch: 0,
                                      shuffle: false, normalization: .unit))[0]
        for (n, image) in images.enumerated() {
            let gt = truth.first { image.name.hasSuffix($0.stem + ".png") }!
            let annotation = try AnnotationFile.read(path: image.annotationURL.path)
            let full = TargetMasks.fullResolution(annotation, width: 256, height: 256)
            for k in 0..<BoneClasses.count {
                let mine = full.mask(classIndex: k)
                let runs = mine.withUnsafeBufferPointer { RLE.runs(of: $0) }
                #expect(Dice.score(runs, gt.classRuns[k]) == 1, "\(image.name) \(BoneClasses.names[k])")

                var truthMask = [UInt8](repeating: 0, count: 256 * 256)
                for run in gt.classRuns[k] { for i in run.start..<run.end { truthMask[i] = 1 } }
                var mismatches = 0, trainingArea = 0
                for oy in 0..<64 {
                    for ox in 0..<64 {
                        var covered = 0
                        for y in (4 * oy)..<(4 * oy + 4) { for x in (4 * ox)..<(4 * ox + 4) { covered += Int(truthMask[y * 256 + x]) } }
                        let value = batch.target.storage[(n * 29 + k) * 4096 + oy * 64 + ox]
                        if value != (covered >= 8 ? 1 : 0) { mismatches += 1 }
                        trainingArea += Int(value)
                    }
                }
                #expect(mismatches == 0, "\(image.name) \(BoneClasses.names[k])")
                // The bone keeps its area at the training size (16 source pixels a target pixel).
                let area = RLE.area(gt.classRuns[k])
                if area >= 400 {
                    #expect(abs(Double(trainingArea * 16) / Double(area) - 1) < 0.1, "\(BoneClasses.names[k]): \(trainingArea * 16) vs \(area)")
                }
            }
        }
    }

    /// A size that does not divide the image (256 → 96): the area kept per class stays within a few percent.
    @Test func fractionalReductionKeepsAreas() throws {
        let folder = try DataFixtures.phantoms(count: 2, size: 256, seed: 8)
        let images = try scan(folder).images
        let truth = try GroundTruth.load(directory: folder.path)
        for image in images {
            let gt = truth.first { image.name.hasSuffix($0.stem + ".png") }!
            let batch = try BatchLoader.load(image, size: 96, normalization: .unit)
            var total = 0.0, totalTruth = 0.0
            for k in 0..<BoneClasses.count {
                let area = Double(RLE.area(gt.classRuns[k]))
                var count = 0.0
                for i in 0..<(96 * 96) { count += Double(batch.target.storage[k * 96 * 96 + i]) }
                let scaled = count * (256.0 / 96.0) * (256.0 / 96.0)
                if area >= 600 { #expect(abs(scaled / area - 1) < 0.12, "\(BoneClasses.names[k]): \(scaled) vs \(area)") }
                total += scaled
                totalTruth += area
            }
            #expect(abs(total / totalTruth - 1) < 0.03, "all bones: \(total) vs \(totalTruth)")
        }
    }

    @Test func sameSeedAndEpochGiveTheSameBytes() throws {
        let folder = try DataFixtures.phantoms(count: 8, size: 128, seed: 5)
        let images = try scan(folder).images
        var augmentation = Augmentation.standard
        augmentation.elastic = true
        augmentation.localContrastProbability = 0.5
        func run(seed: UInt64, epoch e: Int, workers: Int = 1, shuffle: Bool = true) -> [TrainingBatch] {
            epoch(BatchLoader(images: images, size: 64, batchSize: 3, augmentation: augmentation, seed: seed, epoch: e,
                              shuffle: shuffle, normalization: .unit, prefetch: 2, workers: workers))
        }
        func bytes(_ batches: [TrainingBatch]) -> [[Float]] { batches.flatMap { [$0.input.array, $0.target.array] } }
        func order(_ batches: [TrainingBatch]) -> [String] { batches.flatMap(\.names) }

        let a = run(seed: 7, epoch: 3)
        #expect(bytes(a) == bytes(run(seed: 7, epoch: 3)))
        #expect(bytes(a) == bytes(run(seed: 7, epoch: 3, workers: 2)), "thread count changes nothing")
        #expect(Set(order(a)) == Set(images.map(\.name)) && order(a).count == 8)
        #expect(order(run(seed: 7, epoch: 4)) != order(a), "another epoch, another order")
        #expect(order(run(seed: 8, epoch: 3)) != order(a), "another seed, another order")
        #expect(order(run(seed: 7, epoch: 3, shuffle: false)) == images.map(\.name))
        // An image's augmentation depends on (seed, epoch, name), not on where it lands in the epoch.
        let unshuffled = run(seed: 7, epoch: 3, shuffle: false)
        func sample(_ batches: [TrainingBatch], _ name: String) -> [Float] {
            for b in batches {
                if let n = b.names.firstIndex(of: name) {
                    let count = 3 * 64 * 64
                    return Array(UnsafeBufferPointer(start: b.input.storage + n * count, count: count))
                }
            }
            return []
        }
        for image in images { #expect(sample(a, image.name) == sample(unshuffled, image.name)) }
        #expect(sample(a, images[0].name) != sample(run(seed: 7, epoch: 4), images[0].name), "a new epoch draws anew")
    }

    /// The loader prepares `prefetch` batches before anyone asks, and no more.
    @Test func loaderRunsAheadOnItsOwnThread() throws {
        let folder = try DataFixtures.phantoms(count: 8, size: 128, seed: 5)
        let images = try scan(folder).images
        let loader = BatchLoader(images: images, size: 32, batchSize: 1, augmentation: .standard, seed: 0, epoch: 0,
                                 shuffle: true, normalization: .unit, prefetch: 3)
        let deadline = Date().addingTimeInterval(30)
        while loader.ready < 3 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(loader.ready == 3, "prepared before the first next()")
        Thread.sleep(forTimeInterval: 0.3)
        #expect(loader.ready == 3, "no more than prefetch ahead")
        #expect(loader.next() != nil)
        while loader.ready < 3 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(loader.ready == 3, "refilled after a batch was taken")
        #expect(epoch(loader).count == 7)
        #expect(loader.producerThreads == [0], "every batch made on the loader's thread")
    }

    /// A file that decodes badly (or vanished since the scan) is reported and
    /// skipped; the rest of the epoch is delivered.
    @Test func decodeFailuresAreReportedAndSkipped() throws {
        let folder = try DataFixtures.phantoms(count: 6, size: 128, seed: 10)
        let names = DataFixtures.imageNames(in: folder.path)
        let truncated = names[2], vanished = names[5]
        let bytes = try Data(contentsOf: URL(fileURLWithPath: folder.file("DCM/" + truncated)))
        try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: folder.file("DCM/" + truncated)))
        let images = try scan(folder).images
        #expect(images.count == 6, "the header of the truncated file reads")
        try FileManager.default.removeItem(atPath: folder.file("DCM/" + vanished))

        let loader = BatchLoader(images: images, size: 32, batchSize: 2, augmentation: .standard, seed: 0, epoch: 0,
                                 shuffle: false, normalization: .unit)
        let batches = epoch(loader)
        #expect(batches.flatMap(\.names) == names.filter { $0 != truncated && $0 != vanished })
        #expect(batches.map(\.input.shape[0]) == [2, 1, 1])
        #expect(batches.map(\.target.shape[0]) == [2, 1, 1])
        let problems = loader.problems
        #expect(problems.map(\.file) == ["DCM/" + truncated, "DCM/" + vanished])
        #expect(problems.first?.problem.hasPrefix("cannot decode: ") == true, "\(problems)")
        #expect(problems.last?.problem.hasPrefix("cannot read: open failed (No such file or directory)") == true, "\(problems)")
    }

    @Test func aBatchWhoseImagesAllFailIsSkipped() throws {
        let folder = try DataFixtures.phantoms(count: 4, size: 64, seed: 10)
        let images = try scan(folder).images
        for image in images.prefix(2) { try FileManager.default.removeItem(at: image.imageURL) }
        let loader = BatchLoader(images: images, size: 32, batchSize: 2, augmentation: .none, seed: 0, epoch: 0,
                                 shuffle: false, normalization: .unit)
        let batches = epoch(loader)
        #expect(loader.count == 2)
        #expect(batches.map(\.names) == [images[2...].map(\.name)])
        #expect(loader.problems.count == 2)
    }

    @Test func cancellingStopsTheThreads() throws {
        let folder = try DataFixtures.phantoms(count: 4, size: 64, seed: 1)
        let images = try scan(folder).images
        let loader = BatchLoader(images: images + images + images, size: 32, batchSize: 1, augmentation: .none, seed: 0,
                                 epoch: 0, shuffle: false, normalization: .unit, prefetch: 1)
        #expect(loader.next() != nil)
        loader.cancel()
        #expect(loader.next() == nil)
    }
}
