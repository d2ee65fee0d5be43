import Foundation

/// SplitMix64: small, fast, and the same sequence on every platform, so a seed
/// names one data set exactly.
struct SplitMix64: Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// A generator for a sub-stream, independent of how many numbers the parent drew.
    init(seed: UInt64, stream: UInt64, salt: UInt64 = 0) {
        var s = SplitMix64(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        let a = s.next()
        var t = SplitMix64(seed: a &+ stream &* 0xD1B5_4A32_D192_ED03 &+ salt &* 0x8CB9_2BA7_2F3D_8DD7)
        state = t.next()
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * unit() }

    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.upperBound - range.lowerBound + 1))
    }

    mutating func chance(_ p: Double) -> Bool { unit() < p }

    /// Standard normal (Box–Muller).
    mutating func normal() -> Double {
        let u1 = Swift.max(unit(), 1e-300), u2 = unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    mutating func normal(_ mean: Double, _ sd: Double, clamp: Double = 3) -> Double {
        mean + sd * Swift.max(-clamp, Swift.min(clamp, normal()))
    }

    mutating func hex(_ count: Int) -> String {
        let digits = Array("0123456789abcdef")
        var s = ""
        for _ in 0..<count { s.append(digits[Int(next() & 15)]) }
        return s
    }
}
