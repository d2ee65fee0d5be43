import CPNG

/// JPEG through libjpeg-turbo: baseline and progressive, gray or colour.
/// Gray files decode to 1 channel, YCbCr and RGB files to 3 (RGB), 8 bits a
/// sample; CMYK/YCCK and unknown colour spaces are refused with a message.
/// Truncated or corrupt scan data is an error rather than a grey-filled image.
public enum JPEGCodec {
    public static func readHeader(_ bytes: [UInt8]) throws -> ImageHeader {
        var info = bp_jpeg_info()
        var err = [CChar](repeating: 0, count: 256)
        let rc = bytes.withUnsafeBufferPointer { buffer in
            bp_jpeg_read_header(buffer.baseAddress, buffer.count, &info, &err, err.count)
        }
        guard rc == 0 else { throw ImageDecodeError(message(err)) }
        return ImageHeader(width: Int(info.width), height: Int(info.height), channels: Int(info.channels),
                           bitDepth: 8, interlaced: info.progressive != 0)
    }

    /// Decodes the whole image. The size in the frame header is checked against
    /// `maxWidth`×`maxHeight` before any pixel memory is allocated.
    public static func decode(_ bytes: [UInt8], maxWidth: Int = PNGCodec.defaultMaxSide,
                              maxHeight: Int = PNGCodec.defaultMaxSide) throws -> DecodedImage {
        var info = bp_jpeg_info()
        var err = [CChar](repeating: 0, count: 256)
        var pointer: UnsafeMutablePointer<UInt16>? = nil
        let rc = bytes.withUnsafeBufferPointer { buffer in
            bp_jpeg_decode(buffer.baseAddress, buffer.count, UInt32(clamping: max(0, maxWidth)),
                           UInt32(clamping: max(0, maxHeight)), &info, &pointer, &err, err.count)
        }
        guard rc == 0, let pointer else { throw ImageDecodeError(message(err)) }
        defer { bp_jpeg_free(pointer) }
        let count = Int(info.width) * Int(info.height) * Int(info.channels)
        let samples = Array(UnsafeBufferPointer(start: pointer, count: count))
        return DecodedImage(width: Int(info.width), height: Int(info.height), channels: Int(info.channels),
                            bitDepth: 8, samples: samples)
    }

    private static func message(_ err: [CChar]) -> String {
        let text = err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return text.isEmpty ? "unreadable JPEG" : text
    }
}
