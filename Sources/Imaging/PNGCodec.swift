import CPNG

/// An image as decoded: samples interleaved by channel, 8-bit values in 0...255
/// or 16-bit values in 0...65535 (see `bitDepth`).
public struct DecodedImage: Sendable {
    public let width: Int
    public let height: Int
    /// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
    public let channels: Int
    /// 8 or 16.
    public let bitDepth: Int
    public let samples: [UInt16]

    public init(width: Int, height: Int, channels: Int, bitDepth: Int, samples: [UInt16]) {
        precondition(samples.count == width * height * channels)
        self.width = width
        self.height = height
        self.channels = channels
        self.bitDepth = bitDepth
        self.samples = samples
    }
}

public struct ImageHeader: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public let bitDepth: Int
    public let interlaced: Bool
}

public struct ImageDecodeError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// PNG through libpng: every colour type and depth libpng reads, interlaced or not.
public enum PNGCodec {
    /// The default limit on either side, checked against the header before any
    /// pixel memory is allocated.
    public static let defaultMaxSide = 8192

    public static func readHeader(_ bytes: [UInt8]) throws -> ImageHeader {
        var info = bp_png_info()
        var err = [CChar](repeating: 0, count: 256)
        let rc = bytes.withUnsafeBufferPointer { buffer in
            bp_png_read_header(buffer.baseAddress, buffer.count, &info, &err, err.count)
        }
        guard rc == 0 else { throw ImageDecodeError(message(err)) }
        return ImageHeader(width: Int(info.width), height: Int(info.height), channels: Int(info.channels),
                           bitDepth: Int(info.bit_depth), interlaced: info.interlaced != 0)
    }

    public static func decode(_ bytes: [UInt8], maxWidth: Int = defaultMaxSide, maxHeight: Int = defaultMaxSide) throws -> DecodedImage {
        var info = bp_png_info()
        var err = [CChar](repeating: 0, count: 256)
        var pointer: UnsafeMutablePointer<UInt16>? = nil
        let rc = bytes.withUnsafeBufferPointer { buffer in
            bp_png_decode(buffer.baseAddress, buffer.count, UInt32(clamping: maxWidth), UInt32(clamping: maxHeight),
                          &info, &pointer, &err, err.count)
        }
        guard rc == 0, let pointer else { throw ImageDecodeError(message(err)) }
        defer { bp_png_free(pointer) }
        let count = Int(info.width) * Int(info.height) * Int(info.channels)
        let samples = Array(UnsafeBufferPointer(start: pointer, count: count))
        return DecodedImage(width: Int(info.width), height: Int(info.height), channels: Int(info.channels),
                            bitDepth: Int(info.bit_depth), samples: samples)
    }

    /// Encodes 8-bit pixels, interleaved, with 1 (gray), 3 (RGB) or 4 (RGBA) channels.
    public static func encode(pixels: [UInt8], width: Int, height: Int, channels: Int) throws -> [UInt8] {
        precondition(pixels.count == width * height * channels, "pixel buffer does not match \(width)x\(height)x\(channels)")
        var out: UnsafeMutablePointer<UInt8>? = nil
        var length = 0
        var err = [CChar](repeating: 0, count: 256)
        let rc = pixels.withUnsafeBufferPointer { buffer in
            bp_png_encode(buffer.baseAddress, UInt32(width), UInt32(height), Int32(channels), &out, &length, &err, err.count)
        }
        guard rc == 0, let out else { throw ImageDecodeError(message(err)) }
        defer { bp_png_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: length))
    }

    private static func message(_ err: [CChar]) -> String {
        let text = err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return text.isEmpty ? "unreadable PNG" : text
    }
}
