/// Reproducible pseudo-random tensors from a name: SplitMix64 seeded by the
/// FNV-1a hash of the name, one 24-bit uniform per element. The parity fixture
/// script (tools/make_parity_fixtures.py) implements the same generator in
/// NumPy, so a state_dict filled there is rebuilt here bit for bit and the
/// repository needs to hold only inputs and expected outputs.
public enum DeterministicFill {
    public static func fnv1a64(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// Uniform values in [0, 1), each a multiple of 2^-24 (exact in Float32).
    public static func uniform(name: String, count: Int) -> [Float] {
        let seed = fnv1a64(name)
        var out = [Float](repeating: 0, count: count)
        for i in 0..<count {
            var z = seed &+ UInt64(i + 1) &* 0x9e37_79b9_7f4a_7c15
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            z ^= z >> 31
            out[i] = Float(z >> 40) * (1.0 / 16_777_216.0)
        }
        return out
    }

    /// A parameter for a state_dict key, by the key's role:
    /// conv weights uniform in ±sqrt(3/fan_in); BatchNorm weight and running_var in
    /// [0.5, 1.5); biases and running_mean in [-0.1, 0.1).
    public static func parameter(name: String, shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        let u = uniform(name: name, count: count)
        var values = [Float](repeating: 0, count: count)
        if shape.count >= 2 {
            let fanIn = shape.dropFirst().reduce(1, *)
            let scale = Float((3.0 / Double(fanIn)).squareRoot())
            for i in 0..<count { values[i] = (2 * u[i] - 1) * scale }
        } else if name.hasSuffix(".running_var") || name.hasSuffix(".weight") {
            for i in 0..<count { values[i] = 0.5 + u[i] }
        } else {
            for i in 0..<count { values[i] = (u[i] - 0.5) * 0.2 }
        }
        return Tensor(shape: shape, values: values)
    }
}
