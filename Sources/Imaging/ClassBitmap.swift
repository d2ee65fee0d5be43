/// Multi-label masks of one image in 4 bytes a pixel: bit c of a pixel is set
/// when class c covers it (classes overlap in radiographs: Pisiform over
/// Triquetrum). Up to 32 classes; the competition has 29. At 2048² this is
/// 16 MB where 29 byte masks would be 116 MB.
public struct ClassBitmap: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let classCount: Int
    public var bits: [UInt32]

    public init(width: Int, height: Int, classCount: Int) {
        precondition(classCount <= 32, "a ClassBitmap holds at most 32 classes")
        self.width = width
        self.height = height
        self.classCount = classCount
        bits = [UInt32](repeating: 0, count: width * height)
    }

    public init(width: Int, height: Int, classCount: Int, bits: [UInt32]) {
        precondition(classCount <= 32 && bits.count == width * height)
        self.width = width
        self.height = height
        self.classCount = classCount
        self.bits = bits
    }

    public func contains(classIndex: Int, x: Int, y: Int) -> Bool {
        bits[y * width + x] & (1 << UInt32(classIndex)) != 0
    }

    /// One class as bytes (0 or 1), row-major.
    public func mask(classIndex: Int) -> [UInt8] {
        let bit = UInt32(1) << UInt32(classIndex)
        return bits.map { $0 & bit != 0 ? 1 : 0 }
    }

    /// Pixels per class.
    public func areas() -> [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for value in bits where value != 0 {
            var v = value
            while v != 0 {
                let c = v.trailingZeroBitCount
                if c < classCount { counts[c] += 1 }
                v &= v - 1
            }
        }
        return counts
    }
}
