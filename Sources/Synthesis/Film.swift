import Foundation

/// Turns attenuation into an 8-bit film: sums soft tissue, bone and metal, blurs
/// (focal spot and detector), exposes with a random dose and gamma, adds the
/// heel-effect gradient and quantum noise.
enum Film {
    /// Attenuation per template pixel of soft tissue.
    static let softMu: Float = 0.0019

    static func expose(layers: [BoneLayer], soft: [Float], foreign: [Float], size: Int, pixelScale: Double,
                       rng: inout SplitMix64) -> [UInt8] {
        let count = size * size
        var a = [Float](repeating: 0, count: count)
        a.withUnsafeMutableBufferPointer { out in
            soft.withUnsafeBufferPointer { s in
                for i in 0..<count { out[i] = softMu * s[i] }
            }
            if !foreign.isEmpty {
                foreign.withUnsafeBufferPointer { f in
                    for i in 0..<count { out[i] += f[i] }
                }
            }
            for layer in layers where layer.width > 0 {
                layer.density.withUnsafeBufferPointer { d in
                    for ly in 0..<layer.height {
                        let row = (layer.originY + ly) * size + layer.originX
                        let src = ly * layer.width
                        for lx in 0..<layer.width { out[row + lx] += d[src + lx] }
                    }
                }
            }
        }

        // Unsharpness: two box passes ≈ a Gaussian of σ ≈ 0.8 r.
        let sigma = rng.uniform(0.7, 1.9) * Double(size) / 2048
        let radius = Int(sigma.rounded())
        if radius >= 1 {
            boxBlur(&a, size: size, radius: radius)
            boxBlur(&a, size: size, radius: radius)
        }

        // Exposure: detector response 1 − exp(−k·A), display gamma, black and white levels.
        let k = rng.uniform(0.6, 0.9)
        let gamma = rng.uniform(0.8, 1.3)
        let black = rng.uniform(2, 26)
        let white = rng.uniform(228, 258)
        let lutSize = 4096
        let lutMax: Float = 12
        var lut = [Float](repeating: 0, count: lutSize + 1)
        for i in 0...lutSize {
            let att = Double(i) / Double(lutSize) * Double(lutMax)
            let signal = 1 - exp(-k * att)
            lut[i] = Float(black + (white - black) * pow(signal, gamma))
        }
        // Heel effect and uneven development: a linear ramp in a random direction plus a faint vignette.
        let angle = rng.uniform(0, 2 * .pi)
        let ramp = Float(rng.uniform(0.04, 0.14))
        let gx = Float(cos(angle)) * ramp / Float(size), gy = Float(sin(angle)) * ramp / Float(size)
        let vignette = Float(rng.uniform(0, 0.18))
        let noiseLevel = Float(rng.uniform(2.5, 6.0))
        let noiseSeed = rng.next()
        let half = Float(size) / 2
        let invHalf2 = 1 / (half * half * 2)
        let scale = Float(lutSize) / lutMax
        // Detector response and display curve, in place.
        a.withUnsafeMutableBufferPointer { att in
            lut.withUnsafeBufferPointer { l in
                for i in 0..<count {
                    var t = att[i] * scale
                    if t > Float(lutSize - 1) { t = Float(lutSize - 1) }
                    let ti = Int(t)
                    att[i] = l[ti] + (l[ti + 1] - l[ti]) * (t - Float(ti))
                }
            }
        }
        // Unsharp masking, as film digitisers and CR/DR processing do: crisper cortices and skin line.
        let amount = Float(rng.uniform(0.25, 0.75))
        let wide = max(1, Int((rng.uniform(7, 14) * Double(size) / 2048).rounded()))
        var smooth = a
        boxBlur(&smooth, size: size, radius: wide)
        boxBlur(&smooth, size: size, radius: wide)
        a.withUnsafeMutableBufferPointer { v in
            smooth.withUnsafeBufferPointer { s in
                for i in 0..<count { v[i] += amount * (v[i] - s[i]) }
            }
        }
        let invRange = 1 / max(Float(1), Float(white - black))
        let blackLevel = Float(black)
        var pixels = [UInt8](repeating: 0, count: count)
        a.withUnsafeBufferPointer { tone in
            do {
                pixels.withUnsafeMutableBufferPointer { px in
                    for y in 0..<size {
                        let fy = Float(y) - half
                        var state = noiseSeed ^ (UInt64(y) &* 0xD1B5_4A32_D192_ED03)
                        state = (state ^ (state >> 31)) &* 0x94D0_49BB_1331_11EB
                        state ^= state >> 29
                        for x in 0..<size {
                            let i = y * size + x
                            var v = tone[i]
                            let fx = Float(x) - half
                            let gain = 1 + gx * fx + gy * fy - vignette * (fx * fx + fy * fy) * invHalf2
                            v *= gain
                            // Quantum noise grows with attenuation above the open field, which
                            // stays smooth (and keeps the PNG encoder fast). Approximately
                            // Gaussian: the sum of four 16-bit uniforms.
                            state &+= 0x9E37_79B9_7F4A_7C15
                            let signal = (v - blackLevel * gain) * invRange
                            if signal > 0 {
                                var z = state
                                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                                z ^= z >> 31
                                let s = Float(z & 0xFFFF) + Float((z >> 16) & 0xFFFF) + Float((z >> 32) & 0xFFFF) + Float(z >> 48)
                                let gauss = (s * (1.0 / 65536.0) - 2) * 1.7320508
                                v += gauss * noiseLevel * min(1, signal * 4).squareRoot()
                            }
                            px[i] = UInt8(min(255, max(0, v + 0.5)))
                        }
                    }
                }
            }
        }
        return pixels
    }

    /// Separable box blur with clamped edges, in place.
    static func boxBlur(_ data: inout [Float], size: Int, radius: Int) {
        var line = [Float](repeating: 0, count: size)
        let norm = 1 / Float(2 * radius + 1)
        data.withUnsafeMutableBufferPointer { d in
            line.withUnsafeMutableBufferPointer { tmp in
                for y in 0..<size {
                    let row = y * size
                    var acc: Float = 0
                    for k in -radius...radius { acc += d[row + min(max(k, 0), size - 1)] }
                    for x in 0..<size {
                        tmp[x] = acc * norm
                        acc += d[row + min(x + radius + 1, size - 1)] - d[row + max(x - radius, 0)]
                    }
                    for x in 0..<size { d[row + x] = tmp[x] }
                }
                // Columns, a block of rows at a time keeps this cache-friendly.
                var acc = [Float](repeating: 0, count: size)
                acc.withUnsafeMutableBufferPointer { accp in
                    for x in 0..<size { accp[x] = 0 }
                    for k in -radius...radius {
                        let r = min(max(k, 0), size - 1) * size
                        for x in 0..<size { accp[x] += d[r + x] }
                    }
                    var out = [Float](repeating: 0, count: size * (radius + 1))
                    // Ring buffer of the rows still needed for subtraction is the original data:
                    // write results into a delayed window so unread rows are not overwritten.
                    let window = radius + 1
                    out.withUnsafeMutableBufferPointer { o in
                        for y in 0..<size {
                            let slot = (y % window) * size
                            for x in 0..<size { o[slot + x] = accp[x] * norm }
                            let addRow = min(y + radius + 1, size - 1) * size
                            let subRow = max(y - radius, 0) * size
                            for x in 0..<size { accp[x] += d[addRow + x] - d[subRow + x] }
                            // Row y − radius is no longer read after this step (subRow used it last).
                            let done = y - radius
                            if done >= 0 {
                                let s = (done % window) * size
                                for x in 0..<size { d[done * size + x] = o[s + x] }
                            }
                        }
                        for done in max(0, size - radius)..<size {
                            let s = (done % window) * size
                            for x in 0..<size { d[done * size + x] = o[s + x] }
                        }
                    }
                }
            }
        }
    }
}
