/// A run of foreground pixels in a row-major mask: `start` is 0-based here;
/// the text form is 1-based.
public struct Run: Sendable, Equatable, Hashable {
    public var start: Int
    public var length: Int
    public init(start: Int, length: Int) {
        self.start = start
        self.length = length
    }
    /// One past the last pixel.
    public var end: Int { start + length }
}

public struct RLEError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The competition's run-length encoding, byte for byte:
///
///     def encode_mask_to_rle(mask):
///         pixels = mask.flatten()
///         pixels = np.concatenate([[0], pixels, [0]])
///         runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
///         runs[1::2] -= runs[::2]
///         return ' '.join(str(x) for x in runs)
///
/// i.e. the mask read row by row, each run of foreground as "start length"
/// with 1-based start, all numbers joined by single spaces, and the empty
/// string for an empty mask. Masks here are 0 / non-zero (the reference sees
/// 0 / 1 masks; any non-zero byte counts as 1).
public enum RLE {
    // MARK: encoding

    public static func encode(_ mask: BinaryMask) -> String {
        mask.pixels.withUnsafeBufferPointer { encode(pixels: $0) }
    }

    public static func encode(pixels: UnsafeBufferPointer<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(256)
        forEachRun(in: pixels) { start, length in appendRun(&out, start: start, length: length) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The maximal runs of a mask, 0-based, in order.
    public static func runs(of mask: BinaryMask) -> [Run] {
        mask.pixels.withUnsafeBufferPointer { runs(of: $0) }
    }

    public static func runs(of pixels: UnsafeBufferPointer<UInt8>) -> [Run] {
        var out = [Run]()
        forEachRun(in: pixels) { out.append(Run(start: $0, length: $1)) }
        return out
    }

    /// The text of sorted, non-overlapping runs. Runs that touch are merged
    /// first, so the text is what the reference encoder gives for the same pixels.
    public static func encode(runs: [Run]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(runs.count * 12)
        var pending: Run? = nil
        for run in runs where run.length > 0 {
            if var current = pending {
                precondition(run.start >= current.end, "runs overlap or are out of order at \(run.start)")
                if run.start == current.end {
                    current.length += run.length
                    pending = current
                    continue
                }
                appendRun(&out, start: current.start, length: current.length)
            }
            pending = run
        }
        if let last = pending { appendRun(&out, start: last.start, length: last.length) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Calls `body(start, length)` (0-based start) for each maximal run of non-zero bytes.
    /// Skips eight bytes at a time over uniform stretches.
    @inline(__always)
    static func forEachRun(in pixels: UnsafeBufferPointer<UInt8>, _ body: (Int, Int) -> Void) {
        let count = pixels.count
        guard count > 0, let base = pixels.baseAddress else { return }
        let raw = UnsafeRawPointer(base)
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var i = 0
        while i < count {
            // Background: find the next non-zero byte.
            while i + 8 <= count && raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) == 0 { i += 8 }
            while i < count && base[i] == 0 { i += 1 }
            if i >= count { break }
            let start = i
            // Foreground: find the next zero byte.
            while i + 8 <= count {
                let v = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                if (v &- ones) & ~v & highs != 0 { break }  // some byte of v is zero
                i += 8
            }
            while i < count && base[i] != 0 { i += 1 }
            body(start, i - start)
        }
    }

    @inline(__always)
    static func appendRun(_ out: inout [UInt8], start: Int, length: Int) {
        if !out.isEmpty { out.append(0x20) }
        appendDecimal(&out, start + 1)
        out.append(0x20)
        appendDecimal(&out, length)
    }

    @inline(__always)
    static func appendDecimal(_ out: inout [UInt8], _ value: Int) {
        precondition(value >= 0)
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                      UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = value
        var k = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[k] = UInt8(truncatingIfNeeded: 0x30 + n % 10)
                n /= 10
                k += 1
            } while n > 0
            while k > 0 {
                k -= 1
                out.append(d[k])
            }
        }
    }

    // MARK: decoding

    /// Parses the text of an RLE into runs (0-based), validating it against a
    /// mask of `pixelCount` pixels: an even count of whole numbers, starts ≥ 1,
    /// lengths ≥ 1, each run inside the mask and after the previous one.
    /// Whitespace between numbers may be any run of spaces, tabs or line
    /// breaks (the reference decoder splits on whitespace).
    public static func decodeRuns<S: StringProtocol>(_ text: S, pixelCount: Int) throws -> [Run] {
        if let runs = try text.utf8.withContiguousStorageIfAvailable({ try decodeRuns(bytes: $0, pixelCount: pixelCount) }) {
            return runs
        }
        let copy = Array(text.utf8)
        return try copy.withUnsafeBufferPointer { try decodeRuns(bytes: $0, pixelCount: pixelCount) }
    }

    public static func decodeRuns(bytes: UnsafeBufferPointer<UInt8>, pixelCount: Int) throws -> [Run] {
        var runs = [Run]()
        var numbers = 0  // numbers completed
        var pendingStart = 0
        var previousEnd = 0
        var i = 0
        let n = bytes.count
        while true {
            while i < n && (bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D) { i += 1 }
            if i >= n { break }
            // One token: digits up to whitespace or the end.
            let tokenStart = i
            var value = 0
            while i < n {
                let b = bytes[i]
                if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { break }
                guard b >= 0x30 && b <= 0x39 else {
                    var end = i
                    while end < n && !(bytes[end] == 0x20 || bytes[end] == 0x09 || bytes[end] == 0x0A || bytes[end] == 0x0D) { end += 1 }
                    throw RLEError("'\(token(bytes, tokenStart, end))' is not a whole number")
                }
                guard value <= (Int.max - 9) / 10 else {
                    var end = i
                    while end < n && bytes[end] >= 0x30 && bytes[end] <= 0x39 { end += 1 }
                    throw RLEError("number '\(token(bytes, tokenStart, end))' is too large")
                }
                value = value &* 10 &+ Int(b &- 0x30)
                i += 1
            }
            numbers += 1
            if numbers & 1 == 1 {
                guard value >= 1 else { throw RLEError("run \(numbers / 2 + 1): start \(value) is not ≥ 1") }
                pendingStart = value - 1
            } else {
                let index = numbers / 2
                guard value >= 1 else { throw RLEError("run \(index): length \(value) is not ≥ 1") }
                guard pendingStart >= previousEnd else {
                    throw RLEError("run \(index) (start \(pendingStart + 1)) overlaps or comes before run \(index - 1), which ends at pixel \(previousEnd)")
                }
                guard pendingStart <= pixelCount - value else {
                    throw RLEError("run \(index) (start \(pendingStart + 1), length \(value)) ends past the last pixel \(pixelCount)")
                }
                runs.append(Run(start: pendingStart, length: value))
                previousEnd = pendingStart + value
            }
        }
        if numbers & 1 == 1 {
            throw RLEError("odd count of numbers (\(numbers)): the last start has no length")
        }
        return runs
    }

    private static func token(_ bytes: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> String {
        let shown = min(to, from + 24)
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[from..<shown]), as: UTF8.self) + (to > shown ? "…" : "")
    }

    /// Decodes an RLE into a `height`×`width` mask of 0 and 1.
    public static func decode<S: StringProtocol>(_ text: S, width: Int, height: Int) throws -> BinaryMask {
        var mask = BinaryMask(width: width, height: height)
        let runs = try decodeRuns(text, pixelCount: width * height)
        mask.pixels.withUnsafeMutableBufferPointer { p in
            for run in runs {
                (p.baseAddress! + run.start).update(repeating: 1, count: run.length)
            }
        }
        return mask
    }

    /// Number of pixels covered by runs.
    public static func area(_ runs: [Run]) -> Int { runs.reduce(0) { $0 + $1.length } }
}
