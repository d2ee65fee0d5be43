import CompetitionFormat
import Foundation
import Imaging
import Models
import TensorEngine
import TestSupport
import Testing
@testable import Training

/// An image whose bones are exactly its bright pixels: 29 blobs of 220 on 20,
/// each blob a polygon labelled with one class, so mask == (image > 120) holds
/// before and after any geometric change that keeps image and masks together.
private func thresholdImage(in folder: TemporaryFolder, side: Int = 512) throws -> LabelledImage {
    var polygons: [[Point]] = []
    for k in 0..<BoneClasses.count {
        let cx = Double(side) * (0.14 + 0.145 * Double(k % 6)), cy = Double(side) * (0.12 + 0.16 * Double(k / 6))
        let corners = 5 + k % 4, radius = Double(side) * (0.03 + 0.004 * Double(k % 7))
        polygons.append((0..<corners).map { j in
            let a = 2 * Double.pi * Double(j) / Double(corners) + 0.3 * Double(k)
            let r = radius * (j % 2 == 0 ? 1 : 0.75)
            return Point(x: Int((cx + r * cos(a)).rounded()), y: Int((cy + r * sin(a)).rounded()))
        })
    }
    var pixels = [UInt8](repeating: 20, count: side * side)
    pixels.withUnsafeMutableBufferPointer { buffer in
        for polygon in polygons { PolygonFill.fill(polygon, into: buffer, width: side, height: side, value: 220) }
    }
    try FileManager.default.createDirectory(atPath: folder.file("DCM/ID001"), withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: folder.file("outputs_json/ID001"), withIntermediateDirectories: true)
    try Data(try PNGCodec.encode(pixels: pixels, width: side, height: side, channels: 1))
        .write(to: URL(fileURLWithPath: folder.file("DCM/ID001/blobs.png")))
    try DataFixtures.write(DataFixtures.annotation(polygons, size: side), to: folder.file("outputs_json/ID001/blobs.json"))
    return LabelledImage(patient: "ID001", name: "ID001/blobs.png", imageURL: URL(fileURLWithPath: folder.file("DCM/ID001/blobs.png")),
                         annotationURL: URL(fileURLWithPath: folder.file("outputs_json/ID001/blobs.json")))
}

/// Fraction of pixels where "some class covers it" equals "the image is bright there".
private func agreement(image: TrainingBatch, target: TrainingBatch) -> Double {
    let size = image.input.width, plane = size * size
    var agree = 0
    for i in 0..<plane {
        let bright = image.input.storage[i] * 255 > 120  // unit normalisation: x / 255
        var covered = false
        for k in 0..<BoneClasses.count where target.target.storage[k * plane + i] == 1 { covered = true }
        if bright == covered { agree += 1 }
    }
    return Double(agree) / Double(plane)
}

private func mirrored(_ t: Tensor) -> Tensor { Ops.flipHorizontal(t) }

@Suite("DataAugmentation") struct DataAugmentationTests {
    /// Every pixel of four cases equals OpenCV 5.0's (tools/make_data_fixtures.py).
    @Test func claheMatchesOpenCV() throws {
        struct Manifest: Decodable {
            struct Case: Decodable { let clip_limit: Double; let tiles_x: Int; let tiles_y: Int }
            let cases: [String: Case]
        }
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: folder.appendingPathComponent("data_clahe.json")))
        #expect(manifest.cases.count == 4)
        for (name, c) in manifest.cases.sorted(by: { $0.key < $1.key }) {
            let input = try NumPyFile.read(path: folder.appendingPathComponent("data_clahe_\(name)_input.npy").path)
            let expected = try NumPyFile.read(path: folder.appendingPathComponent("data_clahe_\(name)_output.npy").path)
            let (h, w) = (input.shape[0], input.shape[1])
            let out = LocalContrast.clahe(input.array.map { UInt8($0) }, width: w, height: h, clipLimit: c.clip_limit,
                                          tilesX: c.tiles_x, tilesY: c.tiles_y)
            var worst = 0
            for i in 0..<out.count { worst = max(worst, abs(Int(out[i]) - Int(expected.storage[i]))) }
            #expect(worst == 0, "\(name): worst difference \(worst) grey levels")
            #expect(out != input.array.map { UInt8($0) }, "\(name): CLAHE changed nothing")
        }
    }

    @Test func identityAndFlipWarpsAreExact() {
        let size = 17
        let source = (0..<(size * size)).map { Float($0 % 23) }
        var random = DataRandom(seed: 1)
        var draw = AugmentationDraw(.none, size: size, random: &random)
        var out = [Float](repeating: -1, count: size * size)
        WarpMap(draw, size: size).apply(source, to: &out)
        #expect(out == source)
        draw.flip = true
        WarpMap(draw, size: size).apply(source, to: &out)
        for y in 0..<size { for x in 0..<size { #expect(out[y * size + x] == source[y * size + size - 1 - x]) } }
    }

    /// A flipped phantom is the unflipped one mirrored, image and masks alike, byte for byte.
    @Test func flipMovesMasksWithTheBones() throws {
        let folder = try DataFixtures.phantoms(count: 1, size: 256, seed: 12)
        let image = try TrainingDataset.scan(URL(fileURLWithPath: folder.path)).images[0]
        let plain = try BatchLoader.load(image, size: 128, normalization: .unit)
        var flipped = 0, kept = 0
        for seed: UInt64 in 0..<8 {
            let b = try BatchLoader.load(image, size: 128, augmentation: Augmentation(flip: true), seed: seed, normalization: .unit)
            if b.input.array == plain.input.array && b.target.array == plain.target.array {
                kept += 1
            } else {
                #expect(b.input.array == mirrored(plain.input).array, "seed \(seed): image neither kept nor mirrored")
                #expect(b.target.array == mirrored(plain.target).array, "seed \(seed): masks not mirrored with the image")
                flipped += 1
            }
        }
        #expect(flipped > 0 && kept > 0, "flipped \(flipped), kept \(kept) of 8")
        // The masks sit on the bright pixels: bone is brighter than the rest of the film.
        let plane = 128 * 128
        var inside = 0.0, outside = 0.0, nIn = 0, nOut = 0
        for i in 0..<plane {
            var bone = false
            for k in 0..<BoneClasses.count where plain.target.storage[k * plane + i] == 1 { bone = true }
            if bone { inside += Double(plain.input.storage[i]); nIn += 1 } else { outside += Double(plain.input.storage[i]); nOut += 1 }
        }
        #expect(inside / Double(nIn) > outside / Double(nOut) + 0.2)
    }

    /// Rotation, scale and elastic deformation move masks with the image: on an
    /// image whose bones are its bright pixels, ≥ 99 % of pixels agree before and after.
    @Test func geometricChangesKeepImageAndMasksAligned() throws {
        let folder = TemporaryFolder("bonesegd-data")
        let image = try thresholdImage(in: folder)
        let plain = try BatchLoader.load(image, size: 128, normalization: .unit)
        #expect(agreement(image: plain, target: plain) >= 0.99)

        let affine = Augmentation(flip: true, rotationDegrees: 10, scale: 0.9...1.1)
        var elastic = affine
        elastic.elastic = true
        elastic.elasticMagnitude = 0.02
        for seed: UInt64 in 0..<4 {
            let a = try BatchLoader.load(image, size: 128, augmentation: affine, seed: seed, normalization: .unit)
            let e = try BatchLoader.load(image, size: 128, augmentation: elastic, seed: seed, normalization: .unit)
            #expect(a.input.array != plain.input.array, "seed \(seed): nothing moved")
            #expect(e.input.array != a.input.array, "seed \(seed): elastic changed nothing")
            #expect(agreement(image: a, target: a) >= 0.99, "seed \(seed) affine")
            #expect(agreement(image: e, target: e) >= 0.99, "seed \(seed) elastic")
            // The check can fail: masks from another draw do not sit on this image.
            let other = try BatchLoader.load(image, size: 128, augmentation: affine, seed: seed + 100, normalization: .unit)
            #expect(agreement(image: a, target: other) < 0.97, "seed \(seed): misaligned masks still agree")
        }
    }

    /// Brightness, contrast and CLAHE change pixel values only: masks stay put,
    /// values stay on the 0…255 scale.
    @Test func photometricChangesLeaveMasksAlone() throws {
        let folder = try DataFixtures.phantoms(count: 1, size: 256, seed: 13)
        let image = try TrainingDataset.scan(URL(fileURLWithPath: folder.path)).images[0]
        let plain = try BatchLoader.load(image, size: 128, normalization: .unit)
        let photometric = Augmentation(brightness: 0.1, contrast: 0.1, localContrastProbability: 0.5)
        var changed = 0
        for seed: UInt64 in 0..<6 {
            let b = try BatchLoader.load(image, size: 128, augmentation: photometric, seed: seed, normalization: .unit)
            #expect(b.target.array == plain.target.array)
            if b.input.array != plain.input.array { changed += 1 }
            #expect(b.input.array.allSatisfy { $0 >= 0 && $0 <= 1 })
        }
        #expect(changed == 6)
    }

    @Test func standardSettings() {
        let s = Augmentation.standard
        #expect(s.flip && s.rotationDegrees == 10 && s.scale == 0.9...1.1 && s.brightness == 0.1 && s.contrast == 0.1)
        #expect(s.localContrastProbability > 0 && s.localContrastProbability < 1 && !s.elastic)
        #expect(Augmentation.none.isIdentity && !s.isIdentity)
    }
}

extension WarpMap {
    func apply(_ source: [Float], to out: inout [Float]) {
        source.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { apply(s.baseAddress!, to: $0.baseAddress!) } }
    }
}
