import Foundation
import Testing
@testable import CompetitionFormat

@Suite struct RLETests {
    struct Vector {
        let name: String
        let png: String
        let width: Int
        let height: Int
        let rle: String
    }

    static func vectors() throws -> [Vector] {
        let list = try Support.json("rle/vectors.json") as! [[String: Any]]
        return list.map {
            Vector(name: $0["name"] as! String, png: $0["png"] as! String, width: $0["width"] as! Int,
                   height: $0["height"] as! Int, rle: $0["rle"] as! String)
        }
    }

    @Test func encodesLikeTheReferenceEncoder() throws {
        let vectors = try Self.vectors()
        #expect(vectors.count >= 16)
        for v in vectors {
            let mask = try Support.maskPNG(Support.fixture("rle/" + v.png))
            #expect(mask.width == v.width && mask.height == v.height, "\(v.name)")
            #expect(RLE.encode(mask) == v.rle, "\(v.name)")
            #expect(RLE.encode(runs: RLE.runs(of: mask)) == v.rle, "\(v.name)")
        }
    }

    @Test func decodesTheReferenceTextBackToTheMask() throws {
        for v in try Self.vectors() {
            let mask = try Support.maskPNG(Support.fixture("rle/" + v.png))
            #expect(try RLE.decode(v.rle, width: v.width, height: v.height) == mask, "\(v.name)")
        }
    }

    @Test func edgeCasesSpelledOut() throws {
        var mask = BinaryMask(width: 7, height: 5)
        #expect(RLE.encode(mask) == "")
        mask[0, 0] = 1
        mask[6, 4] = 1
        #expect(RLE.encode(mask) == "1 1 35 1")
        mask.pixels = [UInt8](repeating: 1, count: 35)
        #expect(RLE.encode(mask) == "1 35")
        // Any non-zero byte is foreground, as a 0/255 PNG would have it.
        let bytes = BinaryMask(width: 4, height: 1, pixels: [0, 255, 7, 0])
        #expect(RLE.encode(bytes) == "2 2")
    }

    @Test func decodeThenEncodeIsIdentityOnRandomMasks() throws {
        var generator = SystemRandomNumberGenerator()
        for trial in 0..<200 {
            let width = Int.random(in: 1...70, using: &generator), height = Int.random(in: 1...40, using: &generator)
            let density = [0.0, 0.02, 0.5, 0.98, 1.0][trial % 5]
            let pixels = (0..<(width * height)).map { _ in Double.random(in: 0..<1, using: &generator) < density ? UInt8(1) : 0 }
            let mask = BinaryMask(width: width, height: height, pixels: pixels)
            let text = RLE.encode(mask)
            #expect(try RLE.decode(text, width: width, height: height) == mask)
            #expect(RLE.encode(try RLE.decode(text, width: width, height: height)) == text)
            // The run form agrees with a byte-by-byte scan.
            var expected = [Run]()
            var i = 0
            while i < pixels.count {
                if pixels[i] == 0 { i += 1; continue }
                let start = i
                while i < pixels.count && pixels[i] != 0 { i += 1 }
                expected.append(Run(start: start, length: i - start))
            }
            #expect(RLE.runs(of: mask) == expected)
        }
    }

    @Test func touchingRunsAreMergedWhenEncoded() {
        #expect(RLE.encode(runs: [Run(start: 0, length: 2), Run(start: 2, length: 3), Run(start: 9, length: 1)]) == "1 5 10 1")
        #expect(RLE.encode(runs: []) == "")
    }

    @Test func decoderToleratesWhitespaceLikeSplit() throws {
        #expect(try RLE.decodeRuns("  2 3\t\t7  1 ", pixelCount: 10) == [Run(start: 1, length: 3), Run(start: 6, length: 1)])
        #expect(try RLE.decodeRuns("", pixelCount: 10) == [])
        #expect(try RLE.decodeRuns("   ", pixelCount: 10) == [])
    }

    @Test(arguments: [
        ("1 2 3", "odd count"),
        ("1 x", "'x' is not a whole number"),
        ("1 2 4 -1", "'-1' is not a whole number"),
        ("1.5 2", "'1.5' is not a whole number"),
        ("0 2", "start 0 is not ≥ 1"),
        ("3 0", "length 0 is not ≥ 1"),
        ("30 7", "ends past the last pixel 35"),
        ("36 1", "ends past the last pixel 35"),
        ("10 5 12 3", "overlaps or comes before run 1"),
        ("10 2 3 1", "overlaps or comes before run 1"),
        ("99999999999999999999999 1", "too large"),
    ])
    func decoderRejectsMalformedText(text: String, problem: String) {
        do {
            _ = try RLE.decodeRuns(text, pixelCount: 35)
            Issue.record("'\(text)' decoded")
        } catch {
            #expect("\(error)".contains(problem), "'\(text)': \(error)")
        }
    }

    @Test func encodesA2048MaskQuickly() throws {
        let mask = try Support.maskPNG(Support.fixture("rle/realistic_2048.png"))
        let clock = ContinuousClock()
        var text = ""
        let elapsed = clock.measure { for _ in 0..<5 { text = RLE.encode(mask) } }
        #expect(!text.isEmpty)
        // Debug builds are slow; this only guards against something quadratic.
        #expect(elapsed < .seconds(5), "5 encodes of 2048² took \(elapsed)")
    }
}
