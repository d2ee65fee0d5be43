import Testing
@testable import Imaging

@Suite struct PNGCodecTests {
    @Test func grayRoundTrip() throws {
        let pixels: [UInt8] = (0..<(7 * 5)).map { UInt8($0 * 7 % 256) }
        let png = try PNGCodec.encode(pixels: pixels, width: 7, height: 5, channels: 1)
        let decoded = try PNGCodec.decode(png)
        #expect(decoded.width == 7 && decoded.height == 5 && decoded.channels == 1 && decoded.bitDepth == 8)
        #expect(decoded.samples.map { UInt8($0) } == pixels)
    }
}
