/// An inference-mode BatchNorm that cannot be folded into a convolution, as in
/// pre-activation networks (BatchNorm → ReLU → conv): y = x·scale[c] + shift[c],
/// optionally followed by ReLU. Folding it into the next conv's weights is not
/// legal when that conv zero-pads (the padding would have to be `-shift/scale`)
/// nor across the ReLU, so it runs as its own pass over the planes.
public struct ChannelAffine: Sendable {
    public let scale: [Float]
    public let shift: [Float]

    public init(scale: [Float], shift: [Float]) {
        precondition(scale.count == shift.count, "affine has \(scale.count) scales and \(shift.count) shifts")
        self.scale = scale
        self.shift = shift
    }

    /// BatchNorm2d in eval mode: scale = γ/√(var+ε), shift = β − mean·scale, folded in Double.
    public init(gamma: [Float], beta: [Float], mean: [Float], variance: [Float], epsilon: Float = 1e-5) {
        var scale = [Float](repeating: 0, count: gamma.count)
        var shift = [Float](repeating: 0, count: gamma.count)
        for c in 0..<gamma.count {
            let s = Double(gamma[c]) / (Double(variance[c]) + Double(epsilon)).squareRoot()
            scale[c] = Float(s)
            shift[c] = Float(Double(beta[c]) - Double(mean[c]) * s)
        }
        self.init(scale: scale, shift: shift)
    }

    public var channels: Int { scale.count }

    /// Applies the affine (and ReLU) to the first `channels` channels of `input`,
    /// which may hold more (a dense block's growing buffer). The result has
    /// exactly `channels` channels.
    public func callAsFunction(_ input: Tensor, relu: Bool, pool: ComputePool = .shared) -> Tensor {
        precondition(input.rank == 4 && input.channels >= channels,
                     "affine over \(channels) channels cannot read \(input.shape)")
        let c = channels
        let plane = input.height * input.width
        let output = Tensor(shape: [input.batch, c, input.height, input.width])
        scale.withUnsafeBufferPointer { scaleBuffer in
            shift.withUnsafeBufferPointer { shiftBuffer in
                let sc = scaleBuffer.baseAddress!, sh = shiftBuffer.baseAddress!
                pool.parallelFor(input.batch * c) { index in
                    let n = index / c, ch = index % c
                    let src = input.storage + (n * input.channels + ch) * plane
                    let dst = output.storage + index * plane
                    let a = sc[ch], b = sh[ch]
                    if relu {
                        for i in 0..<plane { dst[i] = max(src[i] * a + b, 0) }
                    } else {
                        for i in 0..<plane { dst[i] = src[i] * a + b }
                    }
                }
            }
        }
        return output
    }
}

extension Ops {
    /// Copies all channels of `source` into `destination` starting at channel
    /// `offset` (same batch and spatial size): a dense block appends each
    /// layer's new features to its preallocated buffer this way, so the
    /// concatenation costs one copy of the new channels, not of the whole prefix.
    public static func copyChannels(_ source: Tensor, into destination: Tensor, at offset: Int, pool: ComputePool = .shared) {
        precondition(source.rank == 4 && destination.rank == 4 && source.batch == destination.batch
                     && source.height == destination.height && source.width == destination.width
                     && offset >= 0 && offset + source.channels <= destination.channels,
                     "cannot place \(source.shape) at channel \(offset) of \(destination.shape)")
        let plane = source.height * source.width
        let c = source.channels
        pool.parallelFor(source.batch * c) { index in
            let n = index / c, ch = index % c
            (destination.storage + (n * destination.channels + offset + ch) * plane)
                .update(from: source.storage + index * plane, count: plane)
        }
    }

    /// `accumulator += nearest-upsample(low, factor)` in place, where `low` is
    /// `factor` times smaller on both sides: an HRNet fuse layer's
    /// `Upsample(scale_factor=2^k, mode="nearest")` summed into a branch.
    public static func addUpsampledNearest(_ low: Tensor, into accumulator: Tensor, factor: Int, pool: ComputePool = .shared) {
        precondition(factor >= 1 && low.batch == accumulator.batch && low.channels == accumulator.channels
                     && low.height * factor == accumulator.height && low.width * factor == accumulator.width,
                     "cannot add \(low.shape) upsampled \(factor)x into \(accumulator.shape)")
        let (h, w) = (accumulator.height, accumulator.width)
        let (lh, lw) = (low.height, low.width)
        pool.parallelFor(accumulator.batch * accumulator.channels) { index in
            let dst = accumulator.storage + index * h * w
            let src = low.storage + index * lh * lw
            for y in 0..<h {
                let srow = src + (y / factor) * lw
                let drow = dst + y * w
                if factor == 1 {
                    for x in 0..<w { drow[x] += srow[x] }
                } else {
                    for x in 0..<w { drow[x] += srow[x / factor] }
                }
            }
        }
    }

    /// `accumulator += addend` in place (same shape).
    public static func addInPlace(_ addend: Tensor, into accumulator: Tensor, pool: ComputePool = .shared) {
        addUpsampledNearest(addend, into: accumulator, factor: 1, pool: pool)
    }

    /// ReLU in place.
    public static func reluInPlace(_ tensor: Tensor, pool: ComputePool = .shared) {
        let chunk = 1 << 16
        pool.parallelFor((tensor.count + chunk - 1) / chunk) { i in
            let start = i * chunk, end = min(start + chunk, tensor.count)
            for j in start..<end { tensor.storage[j] = max(tensor.storage[j], 0) }
        }
    }
}
