/// One class's mask of one image: `height` rows of `width` pixels, row-major,
/// one byte a pixel, 0 = background and any other value = foreground.
public struct BinaryMask: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int) {
        precondition(width >= 0 && height >= 0, "negative mask size \(width)x\(height)")
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height)
    }

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height, "mask buffer of \(pixels.count) does not match \(width)x\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public subscript(x: Int, y: Int) -> UInt8 {
        get { pixels[y * width + x] }
        set { pixels[y * width + x] = newValue }
    }

    /// Number of foreground pixels.
    public var area: Int { pixels.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } }
}
