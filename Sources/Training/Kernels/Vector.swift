/// Elementwise loops written with explicit 8-lane vectors: the compiler does not
/// vectorise loops over several raw pointers it cannot prove apart, and these
/// passes over activations run a few hundred times per training step.
enum Vector {
    typealias V = SIMD8<Float>

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// max(v, 0) lane by lane (the stdlib's generic pointwiseMax is not vectorised here).
    @inline(__always) static func positive(_ v: V) -> V { v.replacing(with: 0, where: v .< 0) }

    /// Σ p[i], in eight Float lanes per plane and Double across calls' results.
    static func sum(_ p: UnsafePointer<Float>, _ count: Int) -> Double {
        var acc = V(), i = 0
        while i + 8 <= count { acc += load(p + i); i += 8 }
        var s = Double(acc.sum())
        while i < count { s += Double(p[i]); i += 1 }
        return s
    }

    /// Σ (p[i] − mean)².
    static func squaredDeviations(_ p: UnsafePointer<Float>, _ count: Int, mean: Float) -> Double {
        var acc = V(), i = 0
        let m = V(repeating: mean)
        while i + 8 <= count { let d = load(p + i) - m; acc += d * d; i += 8 }
        var s = Double(acc.sum())
        while i < count { let d = p[i] - mean; s += Double(d * d); i += 1 }
        return s
    }

    /// d[i] = s[i]·scale + shift, or max(that, 0) with `relu`.
    static func affine(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, _ count: Int,
                       scale: Float, shift: Float, relu: Bool) {
        let a = V(repeating: scale), b = V(repeating: shift)
        var i = 0
        if relu {
            while i + 8 <= count { store(positive(load(s + i) * a + b), d + i); i += 8 }
            while i < count { d[i] = max(s[i] * scale + shift, 0); i += 1 }
        } else {
            while i + 8 <= count { store(load(s + i) * a + b, d + i); i += 8 }
            while i < count { d[i] = s[i] * scale + shift; i += 1 }
        }
    }

    /// d[i] = max(s[i], 0).
    static func relu(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, _ count: Int) {
        var i = 0
        while i + 8 <= count { store(positive(load(s + i)), d + i); i += 8 }
        while i < count { d[i] = max(s[i], 0); i += 1 }
    }

    /// d[i] (= or +=) g[i] where y[i] > 0, else 0 (ReLU's backward from its output).
    static func reluBackward(_ g: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>,
                             _ count: Int, accumulate: Bool) {
        let zero = V()
        var i = 0
        if accumulate {
            while i + 8 <= count {
                store(load(d + i) + load(g + i).replacing(with: zero, where: load(y + i) .<= zero), d + i)
                i += 8
            }
            while i < count { if y[i] > 0 { d[i] += g[i] }; i += 1 }
        } else {
            while i + 8 <= count { store(load(g + i).replacing(with: zero, where: load(y + i) .<= zero), d + i); i += 8 }
            while i < count { d[i] = y[i] > 0 ? g[i] : 0; i += 1 }
        }
    }

    /// d[i] = a[i] + b[i].
    static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, _ count: Int) {
        var i = 0
        while i + 8 <= count { store(load(a + i) + load(b + i), d + i); i += 8 }
        while i < count { d[i] = a[i] + b[i]; i += 1 }
    }
}
