/// A single-channel image with Float intensities on the 8-bit scale (0...255).
public struct GrayImage: Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [Float]

    public init(width: Int, height: Int, pixels: [Float]) {
        precondition(pixels.count == width * height)
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

extension DecodedImage {
    /// The radiograph as the competition baseline saw it, on the 8-bit scale:
    /// gray as is; 16-bit scaled by 255/65535 (the real 16-bit films use the full
    /// range, so no windowing is guessed); colour to gray with BT.601 weights as
    /// `cv2.cvtColor(..., COLOR_RGB2GRAY)`; alpha composited over black, the
    /// background of a film.
    public func grayscale() -> GrayImage {
        let count = width * height
        var out = [Float](repeating: 0, count: count)
        let scale: Float = bitDepth == 16 ? 255.0 / 65535.0 : 1
        let maxSample: Float = bitDepth == 16 ? 65535 : 255
        samples.withUnsafeBufferPointer { s in
            switch channels {
            case 1:
                for i in 0..<count { out[i] = Float(s[i]) * scale }
            case 2:
                for i in 0..<count { out[i] = Float(s[2 * i]) * scale * (Float(s[2 * i + 1]) / maxSample) }
            case 3:
                for i in 0..<count {
                    let gray = 0.299 * Float(s[3 * i]) + 0.587 * Float(s[3 * i + 1]) + 0.114 * Float(s[3 * i + 2])
                    out[i] = gray * scale
                }
            default:
                for i in 0..<count {
                    let gray = 0.299 * Float(s[4 * i]) + 0.587 * Float(s[4 * i + 1]) + 0.114 * Float(s[4 * i + 2])
                    out[i] = gray * scale * (Float(s[4 * i + 3]) / maxSample)
                }
            }
        }
        return GrayImage(width: width, height: height, pixels: out)
    }
}

extension GrayImage {
    /// Rounds to 8-bit pixels, for writing.
    public func bytes() -> [UInt8] {
        pixels.map { UInt8(max(0, min(255, $0.rounded()))) }
    }
}
