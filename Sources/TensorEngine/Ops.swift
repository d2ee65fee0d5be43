/// Inference ops on NCHW tensors, each parallel over (image, channel) planes.
public enum Ops {
    /// Max pooling with PyTorch's semantics (padding counts as -inf, floor mode).
    public static func maxPool2d(_ input: Tensor, kernel: Int, stride: Int, padding: Int, pool: ComputePool = .shared) -> Tensor {
        let (h, w) = (input.height, input.width)
        let outH = (h + 2 * padding - kernel) / stride + 1
        let outW = (w + 2 * padding - kernel) / stride + 1
        let output = Tensor(shape: [input.batch, input.channels, outH, outW])
        pool.parallelFor(input.batch * input.channels) { plane in
            let src = input.storage + plane * h * w
            let dst = output.storage + plane * outH * outW
            for oy in 0..<outH {
                let y0 = max(oy * stride - padding, 0), y1 = min(oy * stride - padding + kernel, h)
                for ox in 0..<outW {
                    let x0 = max(ox * stride - padding, 0), x1 = min(ox * stride - padding + kernel, w)
                    var m = -Float.infinity
                    for y in y0..<y1 {
                        let row = src + y * w
                        for x in x0..<x1 { m = max(m, row[x]) }
                    }
                    dst[oy * outW + ox] = m
                }
            }
        }
        return output
    }

    /// Average pooling as PyTorch's AvgPool2d(count_include_pad=True, ceil_mode=False).
    public static func avgPool2d(_ input: Tensor, kernel: Int, stride: Int, padding: Int = 0, pool: ComputePool = .shared) -> Tensor {
        let (h, w) = (input.height, input.width)
        let outH = (h + 2 * padding - kernel) / stride + 1
        let outW = (w + 2 * padding - kernel) / stride + 1
        let output = Tensor(shape: [input.batch, input.channels, outH, outW])
        let divisor = Float(kernel * kernel)
        pool.parallelFor(input.batch * input.channels) { plane in
            let src = input.storage + plane * h * w
            let dst = output.storage + plane * outH * outW
            for oy in 0..<outH {
                let y0 = max(oy * stride - padding, 0), y1 = min(oy * stride - padding + kernel, h)
                for ox in 0..<outW {
                    let x0 = max(ox * stride - padding, 0), x1 = min(ox * stride - padding + kernel, w)
                    var s: Float = 0
                    for y in y0..<y1 {
                        let row = src + y * w
                        for x in x0..<x1 { s += row[x] }
                    }
                    dst[oy * outW + ox] = s / divisor
                }
            }
        }
        return output
    }

    /// Channel concatenation of tensors with equal batch and spatial size.
    public static func concat(_ parts: [Tensor], pool: ComputePool = .shared) -> Tensor {
        upsampleNearest2xConcat(nil, parts, pool: pool)
    }

    /// `cat([interpolate(x, scale_factor=2, mode="nearest"), *skips], dim=1)` in one pass,
    /// the first step of every UNet++ decoder block. `x` may be nil (plain concat).
    public static func upsampleNearest2xConcat(_ x: Tensor?, _ skips: [Tensor], pool: ComputePool = .shared) -> Tensor {
        let reference = skips.first ?? x!
        let (h, w) = skips.isEmpty ? (x!.height * 2, x!.width * 2) : (reference.height, reference.width)
        let batch = reference.batch
        if let x { precondition(x.height * 2 == h && x.width * 2 == w, "cannot join upsampled \(x.shape) with skip of \(h)x\(w)") }
        for s in skips { precondition(s.height == h && s.width == w && s.batch == batch, "skip \(s.shape) does not match \(h)x\(w)") }
        // (source, channel within source) for every output channel.
        var sources: [(Tensor, Int, Bool)] = []
        if let x { for c in 0..<x.channels { sources.append((x, c, true)) } }
        for s in skips { for c in 0..<s.channels { sources.append((s, c, false)) } }
        let outC = sources.count
        let output = Tensor(shape: [batch, outC, h, w])
        let plane = h * w
        pool.parallelFor(batch * outC) { index in
            let n = index / outC, c = index % outC
            let (source, channel, upsample) = sources[c]
            let dst = output.storage + index * plane
            if upsample {
                let sw = source.width
                let src = source.storage + (n * source.channels + channel) * source.height * sw
                for y in 0..<h {
                    let srow = src + (y >> 1) * sw
                    let drow = dst + y * w
                    for x in 0..<sw {
                        let v = srow[x]
                        drow[2 * x] = v
                        drow[2 * x + 1] = v
                    }
                }
            } else {
                dst.update(from: source.storage + (n * source.channels + channel) * plane, count: plane)
            }
        }
        return output
    }

    /// Bilinear resize with PyTorch's `F.interpolate(mode="bilinear", align_corners=False)`
    /// semantics for an explicit output size (no antialiasing), which is also what
    /// `cv2.resize(..., INTER_LINEAR)` computes for float data.
    public static func resizeBilinear(_ input: Tensor, height outH: Int, width outW: Int, pool: ComputePool = .shared) -> Tensor {
        let (h, w) = (input.height, input.width)
        let output = Tensor(shape: [input.batch, input.channels, outH, outW])
        let xs = BilinearAxis(inSize: w, outSize: outW)
        let ys = BilinearAxis(inSize: h, outSize: outH)
        pool.parallelFor(input.batch * input.channels) { plane in
            let src = input.storage + plane * h * w
            let dst = output.storage + plane * outH * outW
            resizePlane(src: src, width: w, dst: dst, outWidth: outW, outHeight: outH, xs: xs, ys: ys)
        }
        return output
    }

    /// One plane of bilinear resize; shared with image resizing outside tensors.
    public static func resizePlane(src: UnsafePointer<Float>, width w: Int, dst: UnsafeMutablePointer<Float>,
                                   outWidth outW: Int, outHeight outH: Int, xs: BilinearAxis, ys: BilinearAxis) {
        for oy in 0..<outH {
            let y0 = ys.index0[oy], y1 = ys.index1[oy]
            let ly1 = ys.lambda1[oy], ly0 = 1 - ly1
            let r0 = src + y0 * w, r1 = src + y1 * w
            let d = dst + oy * outW
            for ox in 0..<outW {
                let x0 = xs.index0[ox], x1 = xs.index1[ox]
                let lx1 = xs.lambda1[ox], lx0 = 1 - lx1
                // The same grouping as PyTorch's CPU kernel: rows first, then columns.
                d[ox] = ly0 * (lx0 * r0[x0] + lx1 * r0[x1]) + ly1 * (lx0 * r1[x0] + lx1 * r1[x1])
            }
        }
    }

    public static func sigmoid(_ input: Tensor, pool: ComputePool = .shared) -> Tensor {
        let output = Tensor(shape: input.shape)
        let chunk = 1 << 16
        pool.parallelFor((input.count + chunk - 1) / chunk) { i in
            let start = i * chunk, end = min(start + chunk, input.count)
            for j in start..<end { output.storage[j] = 1 / (1 + expf(-input.storage[j])) }
        }
        return output
    }

    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "cannot add \(a.shape) and \(b.shape)")
        let output = Tensor(shape: a.shape)
        for i in 0..<a.count { output.storage[i] = a.storage[i] + b.storage[i] }
        return output
    }

    public static func relu(_ input: Tensor) -> Tensor {
        let output = Tensor(shape: input.shape)
        for i in 0..<input.count { output.storage[i] = max(input.storage[i], 0) }
        return output
    }

    /// Mirrors each plane left to right (horizontal-flip test-time augmentation).
    public static func flipHorizontal(_ input: Tensor) -> Tensor {
        let output = Tensor(shape: input.shape)
        let w = input.width
        let rows = input.count / w
        for r in 0..<rows {
            let s = input.storage + r * w, d = output.storage + r * w
            for x in 0..<w { d[x] = s[w - 1 - x] }
        }
        return output
    }
}

/// Source indices and weights along one axis of a bilinear resize, computed as
/// PyTorch's `area_pixel_compute_source_index` with align_corners=False.
public struct BilinearAxis: Sendable {
    public let index0: [Int]
    public let index1: [Int]
    public let lambda1: [Float]

    public init(inSize: Int, outSize: Int) {
        let scale = Float(inSize) / Float(outSize)
        var i0 = [Int](repeating: 0, count: outSize)
        var i1 = [Int](repeating: 0, count: outSize)
        var l1 = [Float](repeating: 0, count: outSize)
        for o in 0..<outSize {
            let source = max(scale * (Float(o) + 0.5) - 0.5, 0)
            let lower = min(Int(source), inSize - 1)
            i0[o] = lower
            i1[o] = lower < inSize - 1 ? lower + 1 : lower
            l1[o] = source - Float(lower)
        }
        index0 = i0
        index1 = i1
        lambda1 = l1
    }
}

#if canImport(Glibc)
import Glibc
#endif
