import TensorEngine

/// SplitMix64: small, fast, and fully determined by its seed, so a split, an
/// epoch's order and each image's augmentation are reproducible on any machine
/// and independent of thread timing.
struct DataRandom: Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// A generator for one purpose: mixing several keys keeps streams apart
    /// (e.g. the same image in two epochs gets unrelated augmentations).
    init(_ keys: UInt64...) {
        var s: UInt64 = 0x6a09_e667_f3bc_c908
        for k in keys { s = DataRandom.mix(s ^ k) &+ 0x9e37_79b9_7f4a_7c15 }
        state = s
    }

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    static func hash(_ text: String) -> UInt64 { DeterministicFill.fnv1a64(text) }

    mutating func next() -> UInt64 {
        state = state &+ 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits.
    mutating func unit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * unit() }

    mutating func chance(_ probability: Double) -> Bool { probability > 0 && unit() < probability }

    /// Uniform in 0..<bound without modulo bias worth caring about (bound ≪ 2^64).
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) { items.swapAt(i, below(i + 1)) }
    }
}
