import Foundation
import Testing
@testable import Imaging

@Suite struct SniffingTests {
    @Test func formatComesFromTheBytesNotTheName() throws {
        #expect(ImageCodec.format(of: try Fixtures.bytes("gray.jpg")) == .jpeg)
        #expect(ImageCodec.format(of: try Fixtures.bytes("gray16.png")) == .png)
        #expect(ImageCodec.format(of: Array("hello".utf8)) == nil)
    }

    @Test func emptyFile() {
        #expect(decodeFailure { try ImageCodec.decode([]) } == "the file is empty")
        #expect(decodeFailure { try ImageCodec.readHeader([]) } == "the file is empty")
    }

    @Test func garbageIsNamedInOneLine() {
        let message = decodeFailure { try ImageCodec.decode(Array("not an image at all".utf8)) }
        #expect(message == "not a PNG or JPEG image (starts with 0x6E 0x6F 0x74 0x20)")
        let one = decodeFailure { try ImageCodec.decode([0x42]) }
        #expect(one == "not a PNG or JPEG image (starts with 0x42)")
    }

    @Test func knownOtherFormatsAreNamed() {
        var dicom = [UInt8](repeating: 0, count: 200)
        dicom.replaceSubrange(128..<132, with: Array("DICM".utf8))
        #expect(decodeFailure { try ImageCodec.decode(dicom) }?.contains("the bytes are DICOM") == true)
        let tiff: [UInt8] = [0x49, 0x49, 0x2A, 0x00] + [UInt8](repeating: 0, count: 20)
        #expect(decodeFailure { try ImageCodec.decode(tiff) }?.contains("the bytes are TIFF") == true)
        // A PNG whose CR LF was rewritten by a text-mode copy.
        let textCopied: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0A, 0x1A, 0x0A, 0, 0, 0]
        #expect(decodeFailure { try ImageCodec.decode(textCopied) }?.contains("PNG signature is damaged") == true)
    }
}

@Suite struct PNGInputTests {
    @Test func interlacedGray() throws {
        let image = try ImageCodec.decode(try Fixtures.bytes("interlaced-gray8.png"))
        #expect(image.width == 13 && image.height == 11 && image.channels == 1 && image.bitDepth == 8)
        var expected: [UInt16] = []
        for y in 0..<11 { for x in 0..<13 { expected.append(UInt16((x * 17 + y * 29) % 256)) } }
        #expect(image.samples == expected)
        #expect(try ImageCodec.readHeader(try Fixtures.bytes("interlaced-gray8.png")).interlaced)
    }

    @Test func fourBitPaletteBecomesRGB() throws {
        let palette: [[UInt16]] = [[0, 0, 0], [255, 0, 0], [0, 200, 0], [10, 20, 250], [128, 128, 128]]
        let image = try ImageCodec.decode(try Fixtures.bytes("palette4.png"))
        #expect(image.width == 9 && image.height == 7 && image.channels == 3 && image.bitDepth == 8)
        var expected: [UInt16] = []
        for y in 0..<7 { for x in 0..<9 { expected += palette[(x + 2 * y) % 5] } }
        #expect(image.samples == expected)
    }

    @Test func sixteenBitGray() throws {
        let image = try ImageCodec.decode(try Fixtures.bytes("gray16.png"))
        #expect(image.width == 7 && image.height == 5 && image.channels == 1 && image.bitDepth == 16)
        var expected: [UInt16] = []
        for y in 0..<5 { for x in 0..<7 { expected.append(UInt16((x * 9000 + y * 7919) % 65536)) } }
        #expect(image.samples == expected)
        let gray = image.grayscale()
        for i in 0..<expected.count {
            let want: Float = Float(expected[i]) * 255 / 65535
            #expect(abs(gray.pixels[i] - want) < 1e-3)
        }
    }

    @Test func grayAlphaCompositesOverBlack() throws {
        let image = try ImageCodec.decode(try Fixtures.bytes("gray-alpha8.png"))
        #expect(image.width == 6 && image.height == 4 && image.channels == 2 && image.bitDepth == 8)
        let gray = image.grayscale()
        for y in 0..<4 {
            for x in 0..<6 {
                let i = y * 6 + x
                #expect(image.samples[2 * i] == UInt16(x * 40) && image.samples[2 * i + 1] == UInt16(y * 80))
                #expect(abs(gray.pixels[i] - Float(x * 40) * Float(y * 80) / 255) < 1e-3)
            }
        }
    }

    @Test func truncatedPNGFails() throws {
        var noise: [UInt8] = []
        var state: UInt32 = 12345
        for _ in 0..<(64 * 64) {
            state = state &* 1_103_515_245 &+ 12345
            noise.append(UInt8(truncatingIfNeeded: state >> 16))
        }
        let png = try PNGCodec.encode(pixels: noise, width: 64, height: 64, channels: 1)
        #expect(try ImageCodec.decode(png).samples.map { UInt8($0) } == noise)
        for cut in [png.count / 2, png.count - 13, 40] {
            let message = decodeFailure { try ImageCodec.decode(Array(png[0..<cut])) }
            #expect(message != nil, "a PNG cut to \(cut) of \(png.count) bytes decoded")
            #expect(message?.contains("\n") == false)
        }
        #expect(decodeFailure { try ImageCodec.decode(Array(png[0..<png.count / 2])) }?.contains("truncated") == true)
    }

    @Test func hugeHeaderFailsFromTheHeaderAlone() throws {
        // A valid signature and IHDR declaring 100000×100000 8-bit gray, then an
        // empty IDAT: the limit check must fire before any pixel memory exists
        // (10 GB here) and before the IDAT is read.
        let ihdr = bigEndian(100_000) + bigEndian(100_000) + [8, 0, 0, 0, 0]
        let emptyDeflate: [UInt8] = [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + pngChunk("IHDR", ihdr)
            + pngChunk("IDAT", emptyDeflate) + pngChunk("IEND", [])
        let header = try ImageCodec.readHeader(png)
        #expect(header.width == 100_000 && header.height == 100_000)
        let start = ContinuousClock.now
        let message = decodeFailure { try ImageCodec.decode(png) }
        #expect(message == "image is 100000x100000, over the limit of 8192x8192")
        #expect(ContinuousClock.now - start < .seconds(1))
    }
}

@Suite struct JPEGInputTests {
    private func expected(_ name: String) throws -> (width: Int, height: Int, channels: Int, samples: [UInt8]) {
        let entry = try Fixtures.json("jpeg-small.json")[name] as! [String: Any]
        let samples = [UInt8](Data(base64Encoded: entry["samples"] as! String)!)
        return (entry["width"] as! Int, entry["height"] as! Int, entry["channels"] as! Int, samples)
    }

    @Test(arguments: ["gray.jpg", "rgb.jpg", "rgb-progressive.jpg"])
    func decodesAsOpenCVDoes(name: String) throws {
        let bytes = try Fixtures.bytes(name)
        let want = try expected(name)
        let image = try ImageCodec.decode(bytes)
        #expect(image.width == want.width && image.height == want.height)
        #expect(image.channels == want.channels && image.bitDepth == 8)
        // Same libjpeg-turbo algorithms (islow IDCT, fancy upsampling) as OpenCV's build.
        let mismatches = zip(image.samples, want.samples).filter { Int($0) != Int($1) }.count
        #expect(mismatches == 0, "\(mismatches) of \(want.samples.count) samples differ from OpenCV")
        let header = try ImageCodec.readHeader(bytes)
        #expect(header.width == want.width && header.height == want.height && header.channels == want.channels)
        #expect(header.interlaced == (name == "rgb-progressive.jpg"))
    }

    @Test(arguments: ["rgb.jpg", "rgb-progressive.jpg"])
    func truncatedJPEGFails(name: String) throws {
        let bytes = try Fixtures.bytes(name)
        for cut in [bytes.count * 3 / 4, bytes.count / 2, 200, 3] {
            let message = decodeFailure { try ImageCodec.decode(Array(bytes[0..<cut])) }
            #expect(message != nil, "\(name) cut to \(cut) of \(bytes.count) bytes decoded")
            #expect(message?.contains("\n") == false)
        }
        let half = decodeFailure { try ImageCodec.decode(Array(bytes[0..<bytes.count / 2])) }
        #expect(half == "JPEG data ends early: the file is truncated")
        // Only the end-of-image marker missing: every pixel is there.
        let whole = try ImageCodec.decode(bytes)
        #expect(try ImageCodec.decode(Array(bytes.dropLast(2))).samples == whole.samples)
    }

    @Test func progressiveCutAtAScanBoundaryFails() throws {
        // Whole scans missing leave no gap in any scan's bits: only the
        // coefficient bookkeeping shows the image is unfinished.
        let bytes = try Fixtures.bytes("rgb-progressive.jpg")
        let scans = (2..<(bytes.count - 1)).filter { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xDA }
        #expect(scans.count > 3)
        for start in scans.dropFirst() {
            #expect(decodeFailure { try ImageCodec.decode(Array(bytes[0..<start])) } == "JPEG data ends early: the file is truncated",
                    "cut before the scan at \(start)")
        }
    }

    @Test func corruptScanDataFails() throws {
        var bytes = try Fixtures.bytes("rgb.jpg")
        // Restart markers in the middle of scan data that has no restart interval.
        let sos = try #require(findMarker(bytes, 0xDA))
        let start = sos + (bytes.count - sos) / 3
        for i in stride(from: start, to: start + 40, by: 2) { bytes[i] = 0xFF; bytes[i + 1] = 0xD3 }
        let message = decodeFailure { try ImageCodec.decode(bytes) }
        #expect(message?.hasPrefix("Corrupt JPEG data") == true, "\(message ?? "decoded")")
    }

    @Test func hugeFrameFailsBeforeAllocating() throws {
        var bytes = try Fixtures.bytes("gray.jpg")
        let sof = try #require(findMarker(bytes, 0xC0))
        // FF C0, length (2), precision (1), height (2), width (2).
        bytes[sof + 5] = 0xEA; bytes[sof + 6] = 0x60  // 60000
        bytes[sof + 7] = 0xEA; bytes[sof + 8] = 0x60
        let header = try ImageCodec.readHeader(bytes)
        #expect(header.width == 60000 && header.height == 60000)
        #expect(decodeFailure { try ImageCodec.decode(bytes) } == "image is 60000x60000, over the limit of 8192x8192")
        let small = try Fixtures.bytes("gray.jpg")
        #expect(decodeFailure { try ImageCodec.decode(small, maxWidth: 39, maxHeight: 100) }
                == "image is 40x30, over the limit of 39x100")
    }

    @Test func cmykIsRefusedClearly() throws {
        let bytes = try Fixtures.bytes("cmyk.jpg")
        let expected = "CMYK JPEG is not supported: save the radiograph as gray or RGB"
        #expect(decodeFailure { try ImageCodec.decode(bytes) } == expected)
        #expect(decodeFailure { try ImageCodec.readHeader(bytes) } == expected)
    }

    @Test func jpegGrayConversionIsBT601() throws {
        let image = try ImageCodec.decode(try Fixtures.bytes("rgb.jpg"))
        let gray = image.grayscale()
        for i in stride(from: 0, to: image.width * image.height, by: 7) {
            let r = Float(image.samples[3 * i]), g = Float(image.samples[3 * i + 1]), b = Float(image.samples[3 * i + 2])
            #expect(abs(gray.pixels[i] - (0.299 * r + 0.587 * g + 0.114 * b)) < 1e-3)
        }
    }

    private func findMarker(_ bytes: [UInt8], _ code: UInt8) -> Int? {
        (2..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == code }
    }
}

@Suite(.enabled(if: RealFilms.available, "../shared/data/real-radiographs is absent"))
struct RealRadiographTests {
    @Test func everyFilmDecodesToItsStatedSizeAndMatchesOpenCVGray() throws {
        let fixture = try Fixtures.json("real-radiographs.json")
        let entries = fixture["files"] as! [String: [String: Any]]
        let sampleCount = fixture["sampleCount"] as! Int
        let stated = try RealFilms.statedSizes()
        let names = try RealFilms.names()
        #expect(names.count == 18)
        #expect(Set(names) == Set(entries.keys), "the films differ from the fixture: rerun tools/make_imaging_fixtures.py")
        for name in names {
            let bytes = try RealFilms.bytes(name)
            let entry = try #require(entries[name])
            #expect(String(fnv1a64(bytes), radix: 16).leftPadded(to: 16) == entry["fnv1a64"] as? String,
                    "\(name) changed since the fixture was made")
            let number = String(name.split(separator: "_")[0])
            let size = try #require(stated[number], "\(name) has no row in the README")

            let image = try ImageCodec.decode(bytes)
            #expect(image.width == size.0 && image.height == size.1, "\(name): \(image.width)x\(image.height), README says \(size.0)x\(size.1)")
            #expect(image.channels == entry["channels"] as? Int && image.bitDepth == entry["bitDepth"] as? Int, "\(name)")
            #expect(ImageCodec.format(of: bytes)?.rawValue == entry["format"] as? String, "\(name)")
            let header = try ImageCodec.readHeader(bytes)
            #expect(header.width == image.width && header.height == image.height, "\(name)")

            let gray = image.grayscale().bytes()
            let seed = UInt64(entry["sampleSeed"] as! String, radix: 16)!
            let reference = [UInt8](Data(base64Encoded: entry["samples"] as! String)!)
            let positions = samplePositions(width: image.width, height: image.height, seed: seed, count: sampleCount)
            var exact = 0, withinOne = 0
            for (k, (x, y)) in positions.enumerated() {
                let d = abs(Int(gray[y * image.width + x]) - Int(reference[k]))
                if d == 0 { exact += 1 }
                if d <= 1 { withinOne += 1 }
            }
            #expect(Double(withinOne) >= 0.999 * Double(sampleCount),
                    "\(name): \(withinOne) of \(sampleCount) sampled pixels within ±1 of OpenCV")
            let mean = Double(gray.reduce(0) { $0 + Int($1) }) / Double(gray.count)
            let referenceMean = Double(entry["graySum"] as! Int) / Double(gray.count)
            #expect(abs(mean - referenceMean) < 0.5, "\(name): mean gray \(mean), OpenCV \(referenceMean)")
            print("\(name): \(image.width)x\(image.height) c\(image.channels)/\(image.bitDepth) exact \(exact)/\(sampleCount) ±1 \(withinOne)/\(sampleCount) mean Δ \(String(format: "%.3f", mean - referenceMean))")
        }
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}

@Suite struct FastPNGTests {
    @Test(arguments: [(1, 1, 1), (3, 7, 5), (4, 33, 2), (1, 64, 48), (3, 257, 3)])
    func roundTripsThroughLibpng(channels: Int, width: Int, height: Int) throws {
        var state: UInt32 = UInt32(width * 131 + height * 7 + channels)
        var pixels: [UInt8] = []
        for i in 0..<(width * height * channels) {
            state = state &* 1_664_525 &+ 1_013_904_223
            // Half smooth ramps, half noise: both kinds of rows go through the filter.
            pixels.append(i % 2 == 0 ? UInt8(truncatingIfNeeded: i / 3) : UInt8(truncatingIfNeeded: state >> 24))
        }
        for level in [1, 6, 12] {
            let png = try PNGCodec.encodeFast(pixels: pixels, width: width, height: height, channels: channels, level: level)
            let header = try ImageCodec.readHeader(png)
            #expect(header.width == width && header.height == height && header.channels == channels && !header.interlaced)
            let decoded = try ImageCodec.decode(png)
            #expect(decoded.samples.map { UInt8($0) } == pixels, "\(channels) channels \(width)x\(height) level \(level)")
        }
    }

    @Test func refusesTwoChannels() {
        #expect(decodeFailure { try PNGCodec.encodeFast(pixels: [0, 0], width: 1, height: 1, channels: 2) } == "cannot encode 2 channels")
    }
}
