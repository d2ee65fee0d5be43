import CompetitionFormat
import Foundation
import Imaging
import Testing
import TensorEngine
import TestSupport

/// `bonectl segment`, `model import` and `release create` as a user runs them:
/// the real binary on real files.
@Suite(.serialized) struct SegmentCommandTests {
    let folder = TemporaryFolder("segment")
    var store: String { folder.file("state/models") }

    init() throws {
        // Two small UNet++ models with different weights (different decoders) and input sizes.
        for (name, decoder, size) in [("tiny-a", "16,16,16,16,16", "64"), ("tiny-b", "32,16,16,8,8", "96")] {
            let weights = folder.file("\(name).safetensors")
            try expectSuccess(["model", "random-weights", "--encoder", "resnet18", "--decoder-channels", decoder, "--out", weights])
            try expectSuccess(["model", "import", weights, "--name", name, "--arch", "unetplusplus", "--encoder", "resnet18",
                               "--decoder-channels", decoder, "--input-size", size, "--store", store])
        }
        try FileManager.default.createDirectory(atPath: folder.file("in/ID001"), withIntermediateDirectories: true)
        try write(png: gradient(width: 150, height: 110, channels: 1), width: 150, height: 110, channels: 1, to: folder.file("in/ID001/left.png"))
        try write(png: gradient(width: 97, height: 131, channels: 3), width: 97, height: 131, channels: 3, to: folder.file("in/right.png"))
        try Data("this is not an image".utf8).write(to: URL(fileURLWithPath: folder.file("in/ID001/bad.png")))
    }

    @discardableResult
    func expectSuccess(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> Product.Result {
        let result = try Product.run("bonectl", arguments)
        #expect(result.status == 0, "bonectl \(arguments.joined(separator: " ")): \(result.stderr)", sourceLocation: sourceLocation)
        return result
    }

    func gradient(width: Int, height: Int, channels: Int) -> [UInt8] {
        (0..<(width * height * channels)).map { i in
            let p = i / channels, x = p % width, y = p / width
            return UInt8((x * 255 / width + (y * 3) % 64 + (i % channels) * 20) % 256)
        }
    }

    func write(png pixels: [UInt8], width: Int, height: Int, channels: Int, to path: String) throws {
        try Data(PNGCodec.encode(pixels: pixels, width: width, height: height, channels: channels)).write(to: URL(fileURLWithPath: path))
    }

    func masks(csv path: String, width: Int, height: Int) throws -> [BinaryMask] {
        let rows = try SubmissionCSV.read(path: path)
        #expect(rows.map(\.className) == BoneClasses.names)
        return try rows.map { try RLE.decode($0.rle, width: width, height: height) }
    }

    @Test func folderGivesOneCompleteResultSetPerImageAndRejectsTheBadFile() throws {
        let out = folder.file("out")
        let result = try Product.run("bonectl", ["segment", folder.file("in"), "--model", "tiny-a", "--store", store, "--out", out])
        #expect(result.status != 0, "a bad file makes the batch exit non-zero")
        let errorLines = result.stderr.split(separator: "\n")
        #expect(errorLines.count == 1 && errorLines[0].contains("bad.png") && errorLines[0].contains("not a PNG or JPEG"), "\(result.stderr)")
        let listing = try FileManager.default.subpathsOfDirectory(atPath: out).filter { !$0.hasSuffix("ID001") }.sorted()
        #expect(listing == ["ID001/left.csv", "ID001/left.json", "ID001/left.overlay.png",
                            "right.csv", "right.json", "right.overlay.png", "submission.csv"])

        let left = try masks(csv: "\(out)/ID001/left.csv", width: 150, height: 110)
        #expect(left.count == 29)
        let overlay = try PNGCodec.decode(Array(try Data(contentsOf: URL(fileURLWithPath: "\(out)/ID001/left.overlay.png"))))
        #expect(overlay.width == 150 && overlay.height == 110 && overlay.channels == 3)

        let sidecar = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(out)/right.json"))) as! [String: Any]
        let input = sidecar["input"] as! [String: Any]
        let bytes = try Data(contentsOf: URL(fileURLWithPath: folder.file("in/right.png")))
        #expect(input["sha256"] as? String == SHA256Reference.hex(bytes))
        #expect(input["width"] as? Int == 97 && input["height"] as? Int == 131)
        #expect(sidecar["release"] as? String == "model:tiny-a")
        let pixels = sidecar["class_pixels"] as! [String: Int]
        let right = try masks(csv: "\(out)/right.csv", width: 97, height: 131)
        for (c, name) in BoneClasses.names.enumerated() { #expect(pixels[name] == right[c].area) }
        let timings = sidecar["timings_seconds"] as! [String: Double]
        #expect(timings["forward"] != nil && timings["decode"] != nil && timings["overlay"] != nil)

        let submission = try SubmissionCSV.read(path: "\(out)/submission.csv")
        #expect(submission.count == 58)
        #expect(Set(submission.map(\.imageName)) == ["left.png", "right.png"])
    }

    /// The masks in the CSV are the logits `--logits` writes, upsampled bilinearly
    /// and compared with the sigmoid, recomputed here pixel by pixel the slow way.
    @Test func csvMasksAgreeWithTheLogitsRecomputedNaively() throws {
        let out = folder.file("naive")
        let image = folder.file("in/right.png")
        try expectSuccess(["segment", image, "--model", "tiny-b", "--store", store, "--out", out, "--logits", folder.file("right.npy")])
        let logits = try NumPyFile.read(path: folder.file("right.npy"))
        #expect(logits.shape == [1, 29, 96, 96])
        let (w, h) = (97, 131)
        let ours = try masks(csv: "\(out)/right.csv", width: w, height: h)
        var same = 0, total = 0, positives = 0
        for c in 0..<29 {
            for y in 0..<h {
                for x in 0..<w {
                    let sy = max((Double(y) + 0.5) * 96 / Double(h) - 0.5, 0), sx = max((Double(x) + 0.5) * 96 / Double(w) - 0.5, 0)
                    let y0 = Int(sy), x0 = Int(sx), y1 = min(y0 + 1, 95), x1 = min(x0 + 1, 95)
                    let ly = sy - Double(y0), lx = sx - Double(x0)
                    func at(_ yy: Int, _ xx: Int) -> Double { Double(logits.storage[(c * 96 + yy) * 96 + xx]) }
                    let v = (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1))
                    let expected = 1 / (1 + exp(-v)) > 0.5
                    positives += expected ? 1 : 0
                    total += 1
                    if expected == (ours[c][x, y] != 0) { same += 1 }
                }
            }
        }
        #expect(positives > 0 && positives < total, "a test that cannot fail: all masks empty or full")
        #expect(Double(same) / Double(total) >= 0.9999, "\(total - same) of \(total) pixels differ")
    }

    @Test func releasesCombineSoftAndHardAndAreNamedInTheSidecar() throws {
        try expectSuccess(["release", "create", "duo-soft", "--members", "tiny-a,tiny-b", "--combine", "soft", "--store", store])
        try expectSuccess(["release", "create", "duo-hard", "--members", "tiny-a,tiny-b", "--combine", "hard", "--min-votes", "2", "--store", store])
        try expectSuccess(["release", "create", "any-hard", "--members", "tiny-a,tiny-b", "--combine", "hard", "--min-votes", "1", "--store", store])
        let image = folder.file("in/right.png")
        for release in ["duo-soft", "duo-hard", "any-hard"] {
            try expectSuccess(["segment", image, "--release", release, "--store", store, "--out", folder.file(release)])
            let sidecar = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder.file("\(release)/right.json")))) as! [String: Any]
            #expect(sidecar["release"] as? String == release)
            #expect((sidecar["members"] as! [[String: Any]]).map { $0["model"] as! String } == ["tiny-a", "tiny-b"])
        }
        for model in ["tiny-a", "tiny-b"] {
            try expectSuccess(["segment", image, "--model", model, "--store", store, "--out", folder.file(model)])
        }
        let a = try masks(csv: folder.file("tiny-a/right.csv"), width: 97, height: 131)
        let b = try masks(csv: folder.file("tiny-b/right.csv"), width: 97, height: 131)
        let both = try masks(csv: folder.file("duo-hard/right.csv"), width: 97, height: 131)
        let either = try masks(csv: folder.file("any-hard/right.csv"), width: 97, height: 131)
        for c in 0..<29 {
            for i in 0..<(97 * 131) {
                #expect((both[c].pixels[i] != 0) == (a[c].pixels[i] != 0 && b[c].pixels[i] != 0))
                #expect((either[c].pixels[i] != 0) == (a[c].pixels[i] != 0 || b[c].pixels[i] != 0))
            }
        }
        let bad = try Product.run("bonectl", ["release", "create", "broken", "--members", "tiny-a,missing", "--store", store])
        #expect(bad.status != 0 && bad.stderr.contains("missing"))
    }

    /// With hflip TTA the result for a mirrored radiograph is the mirror of the result.
    @Test func hflipTestTimeAugmentationIsMirrorSymmetric() throws {
        let (w, h) = (150, 110)
        let pixels = gradient(width: w, height: h, channels: 1)
        var mirrored = pixels
        for y in 0..<h { for x in 0..<w { mirrored[y * w + x] = pixels[y * w + (w - 1 - x)] } }
        try write(png: mirrored, width: w, height: h, channels: 1, to: folder.file("mirror.png"))
        try expectSuccess(["segment", folder.file("in/ID001/left.png"), folder.file("mirror.png"), "--model", "tiny-a",
                           "--store", store, "--tta", "hflip", "--out", folder.file("tta")])
        let original = try masks(csv: folder.file("tta/left.csv"), width: w, height: h)
        let flipped = try masks(csv: folder.file("tta/mirror.csv"), width: w, height: h)
        var differ = 0
        for c in 0..<29 { for y in 0..<h { for x in 0..<w where (original[c][x, y] != 0) != (flipped[c][w - 1 - x, y] != 0) { differ += 1 } } }
        #expect(differ <= 29 * w * h / 10_000, "\(differ) pixels break the mirror symmetry")
    }

    @Test func importRefusesWeightsOfAnotherArchitectureByKeyName() throws {
        let weights = folder.file("r18-default.safetensors")
        try expectSuccess(["model", "random-weights", "--encoder", "resnet18", "--out", weights])
        let result = try Product.run("bonectl", ["model", "import", weights, "--name", "wrong", "--arch", "unetplusplus",
                                                 "--encoder", "resnet34", "--store", store])
        #expect(result.status != 0)
        #expect(result.stderr.contains("missing key 'encoder.layer1.2.conv1.weight'"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(store)/wrong"), "nothing written for a refused import")
    }
}

/// sha256 for checking the sidecar, computed independently with the system's sha256sum.
enum SHA256Reference {
    static func hex(_ data: Data) -> String {
        let folder = TemporaryFolder("sha")
        let path = folder.file("blob")
        try! data.write(to: URL(fileURLWithPath: path))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try! process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return String(text.prefix(64))
    }
}

/// Inputs that must be refused cleanly: one line naming the file and the problem, nothing written.
@Suite struct SegmentRejectionTests {
    @Test func bombHeaderAndTruncatedFilesAreRefusedBeforeDecoding() throws {
        let folder = TemporaryFolder("reject")
        let store = folder.file("models")
        let weights = folder.file("w.safetensors")
        #expect(try Product.run("bonectl", ["model", "random-weights", "--encoder", "resnet18", "--decoder-channels", "8,8,8,8,8", "--out", weights]).status == 0)
        #expect(try Product.run("bonectl", ["model", "import", weights, "--name", "m", "--arch", "unetplusplus", "--encoder", "resnet18",
                                            "--decoder-channels", "8,8,8,8,8", "--input-size", "64", "--store", store]).status == 0)
        // A valid PNG signature and IHDR chunk declaring 100000×100000 (CRC included), then nothing.
        var bomb: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]
        bomb += [0x00, 0x01, 0x86, 0xA0, 0x00, 0x01, 0x86, 0xA0, 8, 0, 0, 0, 0]
        bomb += crc32(Array(bomb[12...])).bigEndianBytes
        try Data(bomb).write(to: URL(fileURLWithPath: folder.file("bomb.png")))
        let good = try PNGCodec.encode(pixels: [UInt8](repeating: 90, count: 64 * 48), width: 64, height: 48, channels: 1)
        try Data(good.prefix(good.count / 2)).write(to: URL(fileURLWithPath: folder.file("truncated.png")))
        try Data().write(to: URL(fileURLWithPath: folder.file("empty.png")))
        for (name, message) in [("bomb.png", "over the limit"), ("truncated.png", "truncated"), ("empty.png", "empty")] {
            let out = folder.file("out-\(name)")
            let result = try Product.run("bonectl", ["segment", folder.file(name), "--model", "m", "--store", store, "--out", out])
            let lines = result.stderr.split(separator: "\n")
            #expect(result.status != 0)
            #expect(lines.count == 1 && lines[0].contains(name) && lines[0].contains(message), "\(name): \(result.stderr)")
            let written = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
            #expect(written.isEmpty, "\(name) left \(written)")
        }
    }

    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
        }
        return ~crc
    }
}

extension UInt32 {
    var bigEndianBytes: [UInt8] { [UInt8(self >> 24), UInt8((self >> 16) & 0xFF), UInt8((self >> 8) & 0xFF), UInt8(self & 0xFF)] }
}
