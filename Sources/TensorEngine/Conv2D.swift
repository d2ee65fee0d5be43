import CBLAS

/// What follows a convolution in the same pass over its output, while the
/// tile is still in cache.
public enum ConvEpilogue: Sendable {
    case none
    case relu
    /// Adds a tensor of the output's shape (a residual), then ReLU.
    case addThenReLU(Tensor)
}

/// A 2-D convolution for inference: weights [Cout, Cin·kh·kw] (PyTorch's layout,
/// flattened), a bias per output channel (BatchNorm is folded into both).
/// Runs as im2col + SGEMM over tiles of output rows, so the column buffer stays
/// a few MB whatever the image size (an untiled 768-channel 3×3 conv at 512²
/// would need 7 GB).
public struct Conv2D: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let padding: Int
    public let dilation: Int
    /// [outChannels, inChannels * kernelHeight * kernelWidth]
    public private(set) var weight: [Float]
    public private(set) var bias: [Float]
    /// Winograd-domain weights, made on first use (after any BatchNorm fold).
    var winogradWeights = WinogradWeights()

    /// Target size of one column tile, in floats (4 MB).
    static let tileFloats = 1 << 20

    public init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, weight: [Float], bias: [Float]? = nil) {
        self.init(inChannels: inChannels, outChannels: outChannels, kernelHeight: kernelSize, kernelWidth: kernelSize,
                  stride: stride, padding: padding, dilation: dilation, weight: weight, bias: bias)
    }

    public init(inChannels: Int, outChannels: Int, kernelHeight: Int, kernelWidth: Int, stride: Int = 1,
                padding: Int = 0, dilation: Int = 1, weight: [Float], bias: [Float]? = nil) {
        precondition(weight.count == outChannels * inChannels * kernelHeight * kernelWidth,
                     "conv weight has \(weight.count) values, expected \(outChannels)x\(inChannels)x\(kernelHeight)x\(kernelWidth)")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.weight = weight
        self.bias = bias ?? [Float](repeating: 0, count: outChannels)
    }

    public var reductionSize: Int { inChannels * kernelHeight * kernelWidth }

    public func outputSize(height: Int, width: Int) -> (Int, Int) {
        let h = (height + 2 * padding - dilation * (kernelHeight - 1) - 1) / stride + 1
        let w = (width + 2 * padding - dilation * (kernelWidth - 1) - 1) / stride + 1
        return (h, w)
    }

    /// Multiply-accumulates for one image of this input size.
    public func macs(height: Int, width: Int) -> Int {
        let (h, w) = outputSize(height: height, width: width)
        return outChannels * reductionSize * h * w
    }

    /// Folds an inference-mode BatchNorm that follows this conv into its weights and bias.
    public mutating func foldBatchNorm(gamma: [Float], beta: [Float], mean: [Float], variance: [Float], epsilon: Float = 1e-5) {
        let k = reductionSize
        for o in 0..<outChannels {
            // Double for the fold so the only float32 rounding is the final one.
            let scale = Double(gamma[o]) / (Double(variance[o]) + Double(epsilon)).squareRoot()
            for i in 0..<k { weight[o * k + i] = Float(Double(weight[o * k + i]) * scale) }
            bias[o] = Float(Double(beta[o]) + (Double(bias[o]) - Double(mean[o])) * scale)
        }
        winogradWeights = WinogradWeights()
    }

    public func callAsFunction(_ input: Tensor, epilogue: ConvEpilogue = .none, pool: ComputePool = .shared) -> Tensor {
        precondition(input.rank == 4 && input.channels == inChannels,
                     "conv expects \(inChannels) input channels, got \(input.shape)")
        let (outH, outW) = outputSize(height: input.height, width: input.width)
        precondition(outH > 0 && outW > 0, "conv output would be empty for input \(input.shape)")
        let output = Tensor(shape: [input.batch, outChannels, outH, outW])
        if case .addThenReLU(let residual) = epilogue {
            precondition(residual.shape == output.shape, "residual \(residual.shape) does not match conv output \(output.shape)")
        }
        if usesWinograd {
            forwardWinograd(input, into: output, epilogue: epilogue, pool: pool)
            return output
        }
        return forwardIm2col(input, into: output, epilogue: epilogue, pool: pool)
    }

    /// im2col + SGEMM, the general path (any kernel, stride, padding, dilation).
    func forwardIm2col(_ input: Tensor, into output: Tensor, epilogue: ConvEpilogue, pool: ComputePool) -> Tensor {
        let (outH, outW) = (output.height, output.width)
        let k = reductionSize
        let outPlane = outH * outW
        let direct = kernelHeight == 1 && kernelWidth == 1 && stride == 1 && padding == 0
        // Rows per tile: bounded by the buffer size, and small enough that every thread gets work.
        let rowFloats = k * outW
        var rowsPerTile = max(1, Self.tileFloats / max(rowFloats, 1))
        let minTiles = pool.threadCount * 4
        rowsPerTile = min(rowsPerTile, max(1, (outH + minTiles - 1) / minTiles))
        let tilesPerImage = (outH + rowsPerTile - 1) / rowsPerTile
        // When an image has fewer row tiles than threads, split output channels too.
        let channelSplits = tilesPerImage * input.batch < pool.threadCount ? pool.threadCount : 1
        let channelsPerSplit = (outChannels + channelSplits - 1) / channelSplits
        let items = input.batch * tilesPerImage * channelSplits

        weight.withUnsafeBufferPointer { weightBuffer in
            bias.withUnsafeBufferPointer { biasBuffer in
                let w = weightBuffer.baseAddress!
                let b = biasBuffer.baseAddress!
                // One column buffer per worker, reused across its tiles.
                let scratch = direct ? [] : (0..<pool.threadCount).map { _ in
                    UnsafeMutablePointer<Float>.allocate(capacity: k * rowsPerTile * outW)
                }
                defer { scratch.forEach { $0.deallocate() } }
                pool.parallelFor(items) { item, worker in
                    let split = item % channelSplits
                    let tile = (item / channelSplits) % tilesPerImage
                    let n = item / (channelSplits * tilesPerImage)
                    let row0 = tile * rowsPerTile
                    let rows = min(rowsPerTile, outH - row0)
                    let co0 = split * channelsPerSplit
                    let coCount = min(channelsPerSplit, outChannels - co0)
                    if coCount <= 0 { return }
                    let columns = rows * outW
                    let inputImage = input.storage + n * inChannels * input.height * input.width
                    let outputTile = output.storage + n * outChannels * outPlane + co0 * outPlane + row0 * outW
                    if direct {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(coCount), Int32(columns), Int32(k),
                                    1, w + co0 * k, Int32(k), inputImage + row0 * outW, Int32(outPlane),
                                    0, outputTile, Int32(outPlane))
                    } else {
                        let col = scratch[worker]
                        Self.im2col(inputImage, channels: inChannels, height: input.height, width: input.width,
                                    kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride,
                                    padding: padding, dilation: dilation, row0: row0, rows: rows,
                                    outWidth: outW, into: col)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(coCount), Int32(columns), Int32(k),
                                    1, w + co0 * k, Int32(k), col, Int32(columns),
                                    0, outputTile, Int32(outPlane))
                    }
                    applyEpilogue(epilogue, output: output, image: n, co0: co0, coCount: coCount,
                                  offset: row0 * outW, length: columns, plane: outPlane, bias: b)
                }
            }
        }
        return output
    }

    private func applyEpilogue(_ epilogue: ConvEpilogue, output: Tensor, image: Int, co0: Int, coCount: Int,
                               offset: Int, length: Int, plane: Int, bias: UnsafePointer<Float>) {
        for co in co0..<(co0 + coCount) {
            let base = (image * outChannels + co) * plane + offset
            let p = output.storage + base
            let bv = bias[co]
            switch epilogue {
            case .none:
                for i in 0..<length { p[i] += bv }
            case .relu:
                for i in 0..<length { p[i] = max(p[i] + bv, 0) }
            case .addThenReLU(let residual):
                let r = residual.storage + base
                for i in 0..<length { p[i] = max(p[i] + bv + r[i], 0) }
            }
        }
    }

    /// Unrolls output rows [row0, row0+rows) of one image into a
    /// [channels·kh·kw, rows·outWidth] column matrix, zero outside the image.
    /// Shared by inference and the training engine's convolution.
    public static func im2col(_ input: UnsafePointer<Float>, channels inChannels: Int, height: Int, width: Int,
                              kernelHeight: Int, kernelWidth: Int, stride: Int, padding: Int, dilation: Int,
                              row0: Int, rows: Int, outWidth: Int, into col: UnsafeMutablePointer<Float>) {
        let columns = rows * outWidth
        var row = 0
        for ci in 0..<inChannels {
            let plane = input + ci * height * width
            for ky in 0..<kernelHeight {
                for kx in 0..<kernelWidth {
                    let dst = col + row * columns
                    row += 1
                    let xOffset = kx * dilation - padding
                    // Output columns whose input x falls inside the image.
                    var oxStart = 0
                    while oxStart < outWidth && oxStart * stride + xOffset < 0 { oxStart += 1 }
                    var oxEnd = outWidth
                    while oxEnd > oxStart && (oxEnd - 1) * stride + xOffset >= width { oxEnd -= 1 }
                    for r in 0..<rows {
                        let oy = row0 + r
                        let iy = oy * stride - padding + ky * dilation
                        let d = dst + r * outWidth
                        if iy < 0 || iy >= height {
                            d.update(repeating: 0, count: outWidth)
                            continue
                        }
                        let src = plane + iy * width
                        if oxStart > 0 { d.update(repeating: 0, count: oxStart) }
                        if oxEnd < outWidth { (d + oxEnd).update(repeating: 0, count: outWidth - oxEnd) }
                        if stride == 1 {
                            if oxEnd > oxStart { (d + oxStart).update(from: src + oxStart + xOffset, count: oxEnd - oxStart) }
                        } else {
                            var ox = oxStart
                            while ox < oxEnd {
                                d[ox] = src[ox * stride + xOffset]
                                ox += 1
                            }
                        }
                    }
                }
            }
        }
    }
}
