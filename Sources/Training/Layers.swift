import CBLAS
import TensorEngine

/// A convolution that keeps its weight unfolded and learns it: groups 1,
/// dilation 1, any kernel, stride and padding. 3×3 stride-1 padding-1 convs on
/// planes with enough tiles run forward, dX and dW as Winograd F(2×2, 3×3)
/// (`Winograd3x3`). The rest is im2col + SGEMM per image; backward recomputes
/// the columns and forms dW = dY·colᵀ and dX = col2im(Wᵀ·dY). Work is split on
/// the ComputePool, and partial weight gradients are summed in a fixed order,
/// so results do not depend on thread timing.
public final class TrainableConv2d {
    public let weight: Parameter
    public let bias: Parameter?
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int

    public init(weight: Parameter, bias: Parameter?, stride: Int, padding: Int) {
        precondition(weight.value.rank == 4 && weight.value.shape[2] == weight.value.shape[3], "conv weight \(weight.value.shape)")
        self.weight = weight
        self.bias = bias
        outChannels = weight.value.shape[0]
        inChannels = weight.value.shape[1]
        kernel = weight.value.shape[2]
        self.stride = stride
        self.padding = padding
    }

    var reduction: Int { inChannels * kernel * kernel }

    func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1)
    }

    /// Target size of one column tile, in floats (4 MB): the buffer stays small
    /// whatever the image size. (Tests lower it to exercise many tiles.)
    var tileFloats = 1 << 20

    private func rowsPerTile(outWidth: Int) -> Int { max(1, tileFloats / max(reduction * outWidth, 1)) }

    enum Algorithm { case automatic, im2col, winograd }
    /// Tests force one path to compare the two.
    var algorithm = Algorithm.automatic
    var winogradTuning = Winograd3x3.Tuning.automatic

    func usesWinograd(_ input: Tensor) -> Bool {
        if algorithm != .automatic { return algorithm == .winograd }
        return Winograd3x3.applies(kernel: kernel, stride: stride, padding: padding, inChannels: inChannels,
                                              outChannels: outChannels, batch: input.batch, height: input.height,
                                              width: input.width)
    }

    /// The Winograd-domain weights, made afresh (the weights change every step).
    private func winogradWeights(pool: ComputePool) -> WinogradWeightBuffer {
        let u = WinogradWeightBuffer(count: 16 * outChannels * inChannels)
        Winograd3x3.transformWeights(weight.value.storage, outChannels: outChannels, inChannels: inChannels,
                                     into: u.pointer, pool: pool)
        return u
    }

    public func forward(_ x: Node, tape: Tape?, pool: ComputePool = .shared) -> Node {
        let input = x.value
        precondition(input.rank == 4 && input.channels == inChannels, "conv expects \(inChannels) channels, got \(input.shape)")
        let (h, w) = (input.height, input.width)
        let (oh, ow) = outputSize(h, w)
        let plane = oh * ow, k = reduction
        let output = Tensor(shape: [input.batch, outChannels, oh, ow])
        if usesWinograd(input) {
            let u = winogradWeights(pool: pool)
            Winograd3x3.convolve(input, u: u.pointer, transposedFlipped: false, bias: bias?.value.storage, into: output,
                                 accumulate: false, tuning: winogradTuning, pool: pool)
            let y = Node(output)
            tape?.record { [self] in
                guard let dy = y.grad else { return }
                backwardWinograd(x, dy, pool: pool)
            }
            return y
        }
        let tileRows = rowsPerTile(outWidth: ow)
        let tiles = (oh + tileRows - 1) / tileRows
        ColumnScratch.shared.with(pool: pool, capacity: k * tileRows * ow) { scratch in
            // Output tiles are independent: images × row tiles.
            pool.parallelFor(input.batch * tiles) { item, worker in
                let (n, tile) = (item / tiles, item % tiles)
                let row0 = tile * tileRows, rows = min(tileRows, oh - row0)
                let columns = rows * ow
                let col = scratch[worker]
                im2col(input.storage + n * inChannels * h * w, h, w, row0, rows, ow, col)
                let out = output.storage + n * outChannels * plane + row0 * ow
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(outChannels), Int32(columns), Int32(k),
                            1, weight.value.storage, Int32(k), col, Int32(columns), 0, out, Int32(plane))
                if let bias {
                    for c in 0..<outChannels {
                        let b = bias.value.storage[c], p = out + c * plane
                        for i in 0..<columns { p[i] += b }
                    }
                }
            }
        }
        let y = Node(output)
        tape?.record { [self] in
            guard let dy = y.grad else { return }
            backward(x, dy, pool: pool)
        }
        return y
    }

    private func backwardWinograd(_ x: Node, _ dy: Tensor, pool: ComputePool) {
        Winograd3x3.weightGradient(input: x.value, outputGradient: dy, into: weight.grad.storage, tuning: winogradTuning,
                                   pool: pool)
        if x.requiresGradient {
            let u = winogradWeights(pool: pool)
            let (dx, accumulate) = x.gradBufferForWrite()
            Winograd3x3.convolve(dy, u: u.pointer, transposedFlipped: true, bias: nil, into: dx, accumulate: accumulate,
                                 tuning: winogradTuning, pool: pool)
        }
        addBiasGradient(dy)
    }

    private func addBiasGradient(_ dy: Tensor) {
        guard let bias else { return }
        let plane = dy.height * dy.width
        for c in 0..<outChannels {
            var s: Float = 0
            for n in 0..<dy.batch {
                let p = dy.storage + (n * outChannels + c) * plane
                for i in 0..<plane { s += p[i] }
            }
            bias.grad.storage[c] += s
        }
    }

    /// One work item per image (its row tiles in order, since their input rows
    /// overlap), so dX needs no locks and dW sums in a fixed order.
    private func backward(_ x: Node, _ dy: Tensor, pool: ComputePool) {
        let input = x.value
        let (h, w) = (input.height, input.width)
        let (oh, ow) = (dy.height, dy.width)
        let plane = oh * ow, k = reduction
        let batch = input.batch
        let dx: Tensor? = x.requiresGradient ? x.gradBuffer() : nil
        let tileRows = rowsPerTile(outWidth: ow)
        let perImage = UnsafeMutablePointer<Float>.allocate(capacity: batch * outChannels * k)
        defer { perImage.deallocate() }
        ColumnScratch.shared.with(pool: pool, capacity: k * tileRows * ow) { scratch in
            pool.parallelFor(batch) { n, worker in
                let col = scratch[worker]
                let image = input.storage + n * inChannels * h * w
                let dw = perImage + n * outChannels * k
                var row0 = 0
                while row0 < oh {
                    let rows = min(tileRows, oh - row0), columns = rows * ow
                    let g = dy.storage + n * outChannels * plane + row0 * ow
                    im2col(image, h, w, row0, rows, ow, col)
                    // dW_n += dY_tile · colᵀ
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(outChannels), Int32(k), Int32(columns),
                                1, g, Int32(plane), col, Int32(columns), row0 == 0 ? 0 : 1, dw, Int32(k))
                    // dcol = Wᵀ · dY_tile, then scattered back onto the image.
                    if let dx {
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k), Int32(columns), Int32(outChannels),
                                    1, weight.value.storage, Int32(k), g, Int32(plane), 0, col, Int32(columns))
                        col2im(col, h, w, row0, rows, ow, dx.storage + n * inChannels * h * w)
                    }
                    row0 += rows
                }
            }
        }
        let dw = weight.grad.storage
        for n in 0..<batch {
            let src = perImage + n * outChannels * k
            for i in 0..<(outChannels * k) { dw[i] += src[i] }
        }
        addBiasGradient(dy)
    }

    /// Output columns [start, end) whose input column ox·stride + offset lies inside 0..<w.
    @inline(__always)
    private func columnRange(offset: Int, w: Int, ow: Int) -> (Int, Int) {
        var start = 0
        while start < ow && start * stride + offset < 0 { start += 1 }
        var end = ow
        while end > start && (end - 1) * stride + offset >= w { end -= 1 }
        return (start, end)
    }

    /// [Cin·k·k, rows·ow] columns of output rows [row0, row0 + rows) of one image (zero outside it).
    private func im2col(_ image: UnsafeMutablePointer<Float>, _ h: Int, _ w: Int, _ row0: Int, _ rows: Int, _ ow: Int,
                        _ col: UnsafeMutablePointer<Float>) {
        Conv2D.im2col(image, channels: inChannels, height: h, width: w, kernelHeight: kernel, kernelWidth: kernel,
                      stride: stride, padding: padding, dilation: 1, row0: row0, rows: rows, outWidth: ow, into: col)
    }

    /// Adds the columns of output rows [row0, row0 + rows) back onto one image's
    /// gradient (the adjoint of im2col).
    private func col2im(_ col: UnsafeMutablePointer<Float>, _ h: Int, _ w: Int, _ row0: Int, _ rows: Int, _ ow: Int,
                        _ image: UnsafeMutablePointer<Float>) {
        var row = 0
        for ci in 0..<inChannels {
            let dst = image + ci * h * w
            for ky in 0..<kernel {
                for kx in 0..<kernel {
                    let src = col + row * rows * ow
                    row += 1
                    let offset = kx - padding
                    let (start, end) = columnRange(offset: offset, w: w, ow: ow)
                    if end <= start { continue }
                    for r in 0..<rows {
                        let iy = (row0 + r) * stride - padding + ky
                        if iy < 0 || iy >= h { continue }
                        let d = dst + iy * w + offset, s = src + r * ow
                        if stride == 1 {
                            for ox in start..<end { d[ox] += s[ox] }
                        } else {
                            for ox in start..<end { d[ox * stride] += s[ox] }
                        }
                    }
                }
            }
        }
    }
}

/// PyTorch's BatchNorm2d (momentum 0.1, eps 1e-5). Training mode normalises by
/// the batch's mean and biased variance and updates the running statistics as
/// PyTorch does (running_var with the unbiased variance); evaluation mode uses
/// the running statistics.
public final class TrainableBatchNorm2d {
    public let weight: Parameter
    public let bias: Parameter
    public let runningMean: Tensor
    public let runningVar: Tensor
    public let name: String
    public private(set) var batchesTracked = 0
    public let momentum: Float = 0.1
    public let epsilon: Float = 1e-5

    public init(name: String, weight: Parameter, bias: Parameter, runningMean: Tensor, runningVar: Tensor) {
        self.name = name
        self.weight = weight
        self.bias = bias
        self.runningMean = runningMean
        self.runningVar = runningVar
    }

    public var channels: Int { weight.value.count }

    /// With `relu`, the output is max(BatchNorm(x), 0) in the same pass, and the
    /// backward masks the gradient by the output: no separate ReLU tensor or pass.
    public func forward(_ x: Node, training: Bool, relu: Bool = false, tape: Tape?, pool: ComputePool = .shared) -> Node {
        let input = x.value
        precondition(input.rank == 4 && input.channels == channels, "batch norm of \(channels) channels got \(input.shape)")
        if relu && !training {
            return TrainOps.relu(forward(x, training: false, tape: tape, pool: pool), tape: tape, pool: pool)
        }
        let (batch, plane) = (input.batch, input.height * input.width)
        let output = Tensor(shape: input.shape)
        let gamma = weight.value.storage, beta = bias.value.storage
        if !training {
            pool.parallelFor(channels) { c in
                let invstd = 1 / (runningVar.storage[c] + epsilon).squareRoot()
                let mean = runningMean.storage[c]
                for n in 0..<batch {
                    let offset = (n * channels + c) * plane
                    let s = input.storage + offset, d = output.storage + offset
                    for i in 0..<plane { d[i] = (s[i] - mean) * invstd * gamma[c] + beta[c] }
                }
            }
            let y = Node(output)
            tape?.record { [self] in
                guard let dy = y.grad else { return }
                let dx = x.gradBuffer()
                for c in 0..<channels {
                    let invstd = 1 / (runningVar.storage[c] + epsilon).squareRoot()
                    let mean = runningMean.storage[c]
                    var sdy: Double = 0, sdyx: Double = 0
                    for n in 0..<batch {
                        let offset = (n * channels + c) * plane
                        let g = dy.storage + offset, s = input.storage + offset, d = dx.storage + offset
                        for i in 0..<plane {
                            sdy += Double(g[i])
                            sdyx += Double(g[i] * (s[i] - mean) * invstd)
                            d[i] += g[i] * gamma[c] * invstd
                        }
                    }
                    weight.grad.storage[c] += Float(sdyx)
                    bias.grad.storage[c] += Float(sdy)
                }
            }
            return y
        }
        let count = batch * plane
        precondition(count > 1, "batch norm in training needs more than one value per channel, got \(input.shape)")
        var invstds = [Float](repeating: 0, count: channels)
        var means = [Float](repeating: 0, count: channels)
        var variances = [Float](repeating: 0, count: channels)
        invstds.withUnsafeMutableBufferPointer { invstdBuffer in
            means.withUnsafeMutableBufferPointer { meanBuffer in
                variances.withUnsafeMutableBufferPointer { varBuffer in
                    let (invstdOut, meanOut, varOut) = (invstdBuffer.baseAddress!, meanBuffer.baseAddress!, varBuffer.baseAddress!)
                    pool.parallelFor(channels) { c in
                        // Two passes (mean, then squared deviations): no cancellation in the variance.
                        var sum: Double = 0
                        for n in 0..<batch { sum += Vector.sum(input.storage + (n * channels + c) * plane, plane) }
                        let m = Float(sum / Double(count))
                        var squares: Double = 0
                        for n in 0..<batch {
                            squares += Vector.squaredDeviations(input.storage + (n * channels + c) * plane, plane, mean: m)
                        }
                        let variance = squares / Double(count)
                        let invstd = Float(1 / (variance + Double(epsilon)).squareRoot())
                        let scale = invstd * gamma[c], shift = beta[c] - m * invstd * gamma[c]
                        for n in 0..<batch {
                            let offset = (n * channels + c) * plane
                            Vector.affine(input.storage + offset, output.storage + offset, plane, scale: scale, shift: shift,
                                          relu: relu)
                        }
                        invstdOut[c] = invstd
                        meanOut[c] = m
                        varOut[c] = Float(squares / Double(count - 1))
                    }
                }
            }
        }
        for c in 0..<channels {
            runningMean.storage[c] = momentum * means[c] + (1 - momentum) * runningMean.storage[c]
            runningVar.storage[c] = momentum * variances[c] + (1 - momentum) * runningVar.storage[c]
        }
        batchesTracked += 1
        let y = Node(output)
        tape?.record { [self] in
            guard let dy = y.grad else { return }
            let (dx, accumulate) = x.gradBufferForWrite()
            var dgamma = [Float](repeating: 0, count: channels)
            var dbeta = [Float](repeating: 0, count: channels)
            dgamma.withUnsafeMutableBufferPointer { dgBuffer in
                dbeta.withUnsafeMutableBufferPointer { dbBuffer in
                    let (dgOut, dbOut) = (dgBuffer.baseAddress!, dbBuffer.baseAddress!)
                    pool.parallelFor(channels) { c in
                        // x̂ is recomputed from the input rather than kept: one activation less per BatchNorm.
                        // With the fused ReLU, the gradient reaching the norm is dy where the output is positive.
                        let (m, invstd) = (means[c], invstds[c])
                        var sdy: Double = 0, sdyc: Double = 0
                        let mv = Vector.V(repeating: m), zero = Vector.V()
                        for n in 0..<batch {
                            let offset = (n * channels + c) * plane
                            let g = dy.storage + offset, s = input.storage + offset, out = output.storage + offset
                            var a1 = Vector.V(), a2 = Vector.V(), i = 0
                            while i + 8 <= plane {
                                var gv = Vector.load(g + i)
                                if relu { gv.replace(with: zero, where: Vector.load(out + i) .<= zero) }
                                a1 += gv
                                a2 += gv * (Vector.load(s + i) - mv)
                                i += 8
                            }
                            var t1 = Double(a1.sum()), t2 = Double(a2.sum())
                            while i < plane {
                                let gi = relu && out[i] <= 0 ? 0 : g[i]
                                t1 += Double(gi)
                                t2 += Double(gi * (s[i] - m))
                                i += 1
                            }
                            sdy += t1
                            sdyc += t2
                        }
                        let sdyx = sdyc * Double(invstd)
                        let meanDy = Float(sdy / Double(count)), meanDyx = Float(sdyx / Double(count))
                        // dx = γ·invstd·(g − mean(g) − x̂·mean(g·x̂)) = a·g + b·x + c
                        let a = gamma[c] * invstd
                        let b = -a * invstd * meanDyx
                        let cc = -a * meanDy - b * m
                        let av = Vector.V(repeating: a), bv = Vector.V(repeating: b), cv = Vector.V(repeating: cc)
                        for n in 0..<batch {
                            let offset = (n * channels + c) * plane
                            let g = dy.storage + offset, s = input.storage + offset, d = dx.storage + offset
                            let out = output.storage + offset
                            var i = 0
                            while i + 8 <= plane {
                                var gv = Vector.load(g + i)
                                if relu { gv.replace(with: zero, where: Vector.load(out + i) .<= zero) }
                                var r = av * gv + bv * Vector.load(s + i) + cv
                                if accumulate { r += Vector.load(d + i) }
                                Vector.store(r, d + i)
                                i += 8
                            }
                            while i < plane {
                                let gi = relu && out[i] <= 0 ? 0 : g[i]
                                let r = a * gi + b * s[i] + cc
                                d[i] = accumulate ? d[i] + r : r
                                i += 1
                            }
                        }
                        dgOut[c] = Float(sdyx)
                        dbOut[c] = Float(sdy)
                    }
                }
            }
            for c in 0..<channels {
                weight.grad.storage[c] += dgamma[c]
                bias.grad.storage[c] += dbeta[c]
            }
        }
        return y
    }
}

/// The parameter-free ops of the networks, each with its backward.
/// conv → BatchNorm (→ ReLU), SMP's Conv2dReLU and torchvision's conv/bn pairs.
final class ConvBatchNorm {
    let conv: TrainableConv2d
    let norm: TrainableBatchNorm2d
    init(conv: TrainableConv2d, norm: TrainableBatchNorm2d) {
        self.conv = conv
        self.norm = norm
    }
    func callAsFunction(_ x: Node, relu: Bool, training: Bool, tape: Tape?) -> Node {
        norm.forward(conv.forward(x, tape: tape), training: training, relu: relu, tape: tape)
    }
}


public enum TrainOps {
    public static func relu(_ x: Node, tape: Tape?, pool: ComputePool = .shared) -> Node {
        let output = Tensor(shape: x.value.shape)
        let input = x.value
        pool.chunks(output.count) { start, end in Vector.relu(input.storage + start, output.storage + start, end - start) }
        let y = Node(output)
        tape?.record {
            guard let dy = y.grad else { return }
            let (dx, accumulate) = x.gradBufferForWrite()
            pool.chunks(dy.count) { start, end in
                Vector.reluBackward(dy.storage + start, output.storage + start, dx.storage + start, end - start,
                                    accumulate: accumulate)
            }
        }
        return y
    }

    /// Elementwise logistic sigmoid; backward dx = dy · y · (1 − y).
    public static func sigmoid(_ x: Node, tape: Tape?, pool: ComputePool = .shared) -> Node {
        let y = Node(Ops.sigmoid(x.value, pool: pool))
        tape?.record {
            guard let dy = y.grad else { return }
            let dx = x.gradBuffer()
            let out = y.value.storage
            pool.chunks(dy.count) { start, end in
                for i in start..<end { dx.storage[i] += dy.storage[i] * out[i] * (1 - out[i]) }
            }
        }
        return y
    }

    /// a + b (a residual join).
    public static func add(_ a: Node, _ b: Node, tape: Tape?, pool: ComputePool = .shared) -> Node {
        precondition(a.value.shape == b.value.shape, "cannot add \(a.value.shape) and \(b.value.shape)")
        let output = Tensor(shape: a.value.shape)
        let (left, right) = (a.value, b.value)
        pool.chunks(output.count) { start, end in
            Vector.add(left.storage + start, right.storage + start, output.storage + start, end - start)
        }
        let y = Node(output)
        tape?.record {
            guard let dy = y.grad else { return }
            a.accumulate(dy, pool: pool)
            b.accumulate(dy, pool: pool)
        }
        return y
    }

    /// Max pooling as PyTorch (padding is -inf, floor mode); the gradient goes to
    /// the first maximum of each window in row-major order, as PyTorch's CPU kernel.
    public static func maxPool2d(_ x: Node, kernel: Int, stride: Int, padding: Int, tape: Tape?,
                                 pool: ComputePool = .shared) -> Node {
        let input = x.value
        let (h, w) = (input.height, input.width)
        let oh = (h + 2 * padding - kernel) / stride + 1
        let ow = (w + 2 * padding - kernel) / stride + 1
        let output = Tensor(shape: [input.batch, input.channels, oh, ow])
        let planes = input.batch * input.channels
        let argmax = UnsafeMutablePointer<Int32>.allocate(capacity: planes * oh * ow)
        pool.parallelFor(planes) { p in
            let src = input.storage + p * h * w
            let dst = output.storage + p * oh * ow
            let arg = argmax + p * oh * ow
            for oy in 0..<oh {
                let y0 = max(oy * stride - padding, 0), y1 = min(oy * stride - padding + kernel, h)
                for ox in 0..<ow {
                    let x0 = max(ox * stride - padding, 0), x1 = min(ox * stride - padding + kernel, w)
                    var m = -Float.infinity, at = -1
                    for yy in y0..<y1 {
                        for xx in x0..<x1 where src[yy * w + xx] > m || at < 0 {
                            m = src[yy * w + xx]
                            at = yy * w + xx
                        }
                    }
                    dst[oy * ow + ox] = m
                    arg[oy * ow + ox] = Int32(at)
                }
            }
        }
        let y = Node(output)
        let indices = ArgmaxStore(argmax)
        if let tape {
            tape.record {
                guard let dy = y.grad else { return }
                let dx = x.gradBuffer()
                pool.parallelFor(planes) { p in
                    let g = dy.storage + p * oh * ow, arg = indices.pointer + p * oh * ow, d = dx.storage + p * h * w
                    for i in 0..<(oh * ow) { d[Int(arg[i])] += g[i] }
                }
            }
        }
        return y
    }

    /// Average pooling as PyTorch's AvgPool2d(count_include_pad=True, floor mode):
    /// each output's gradient is spread as dy/k² over its window's in-image inputs.
    public static func avgPool2d(_ x: Node, kernel: Int, stride: Int, padding: Int = 0, tape: Tape?,
                                 pool: ComputePool = .shared) -> Node {
        let y = Node(Ops.avgPool2d(x.value, kernel: kernel, stride: stride, padding: padding, pool: pool))
        tape?.record {
            guard let dy = y.grad else { return }
            let dx = x.gradBuffer()
            let (h, w, oh, ow) = (x.value.height, x.value.width, dy.height, dy.width)
            let divisor = Float(kernel * kernel)
            pool.parallelFor(dy.batch * dy.channels) { p in
                let g = dy.storage + p * oh * ow, d = dx.storage + p * h * w
                for oy in 0..<oh {
                    let y0 = max(oy * stride - padding, 0), y1 = min(oy * stride - padding + kernel, h)
                    for ox in 0..<ow {
                        let x0 = max(ox * stride - padding, 0), x1 = min(ox * stride - padding + kernel, w)
                        let v = g[oy * ow + ox] / divisor
                        for yy in y0..<y1 { for xx in x0..<x1 { d[yy * w + xx] += v } }
                    }
                }
            }
        }
        return y
    }

    /// Bilinear resize as `F.interpolate(mode="bilinear", align_corners=False)`;
    /// backward spreads each output's gradient over its four sources with the
    /// same weights.
    public static func resizeBilinear(_ x: Node, height: Int, width: Int, tape: Tape?, pool: ComputePool = .shared) -> Node {
        let y = Node(Ops.resizeBilinear(x.value, height: height, width: width, pool: pool))
        tape?.record {
            guard let dy = y.grad else { return }
            let dx = x.gradBuffer()
            let (h, w) = (x.value.height, x.value.width)
            let xs = BilinearAxis(inSize: w, outSize: width), ys = BilinearAxis(inSize: h, outSize: height)
            pool.parallelFor(dy.batch * dy.channels) { p in
                let g = dy.storage + p * height * width, d = dx.storage + p * h * w
                for oy in 0..<height {
                    let (y0, y1, ly1) = (ys.index0[oy], ys.index1[oy], ys.lambda1[oy])
                    let ly0 = 1 - ly1
                    for ox in 0..<width {
                        let (x0, x1, lx1) = (xs.index0[ox], xs.index1[ox], xs.lambda1[ox])
                        let lx0 = 1 - lx1
                        let v = g[oy * width + ox]
                        d[y0 * w + x0] += ly0 * lx0 * v
                        d[y0 * w + x1] += ly0 * lx1 * v
                        d[y1 * w + x0] += ly1 * lx0 * v
                        d[y1 * w + x1] += ly1 * lx1 * v
                    }
                }
            }
        }
        return y
    }

    /// `cat([interpolate(x, scale_factor=2, mode="nearest"), *skips], dim=1)`.
    public static func upsampleConcat(_ x: Node, _ skips: [Node], tape: Tape?, pool: ComputePool = .shared) -> Node {
        // Backward writes each input's planes from parallel items: every input must be a different node.
        precondition(Set(([x] + skips).map(ObjectIdentifier.init)).count == skips.count + 1, "a node is joined twice")
        let y = Node(Ops.upsampleNearest2xConcat(x.value, skips.map(\.value), pool: pool))
        tape?.record {
            guard let dy = y.grad else { return }
            let (batch, outC, h, w) = (dy.batch, dy.channels, dy.height, dy.width)
            let plane = h * w
            let xc = x.value.channels, sw = x.value.width
            let dx = x.gradBuffer()
            // Every output channel feeds one plane of one input: (image, channel) items are independent.
            var targets: [(Tensor, Int, Int)] = []  // gradient buffer, its channels, channel within it
            for c in 0..<xc { targets.append((dx, xc, c)) }
            for s in skips {
                let ds = s.gradBuffer()
                for c in 0..<s.value.channels { targets.append((ds, s.value.channels, c)) }
            }
            pool.parallelFor(batch * outC) { index in
                let (n, c) = (index / outC, index % outC)
                let g = dy.storage + index * plane
                let (buffer, channels, channel) = targets[c]
                if c < xc {
                    let d = buffer.storage + (n * channels + channel) * x.value.height * sw
                    for yy in 0..<h {
                        let row = d + (yy >> 1) * sw, src = g + yy * w
                        for xx in 0..<w { row[xx >> 1] += src[xx] }
                    }
                } else {
                    let d = buffer.storage + (n * channels + channel) * plane
                    for i in 0..<plane { d[i] += g[i] }
                }
            }
        }
        return y
    }
}

/// Transformed weights, freed with the tape step that holds them.
final class WinogradWeightBuffer {
    let pointer: UnsafeMutablePointer<Float>
    init(count: Int) { pointer = .allocate(capacity: count) }
    deinit { pointer.deallocate() }
}

/// Argmax indices of a max pool, kept until its backward step has run.
final class ArgmaxStore {
    let pointer: UnsafeMutablePointer<Int32>
    init(_ pointer: UnsafeMutablePointer<Int32>) { self.pointer = pointer }
    deinit { pointer.deallocate() }
}
