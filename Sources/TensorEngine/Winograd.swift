import CBLAS
import Foundation

/// Winograd F(2×2, 3×3) for the 3×3, stride-1, padding-1 convolutions that make
/// up most of a UNet++: each 2×2 output tile is computed from a 4×4 input tile
/// with 16 multiplies per channel pair instead of 36, as 16 GEMMs
/// (Cout×Cin by Cin×tiles) between input and output transforms. The transforms
/// are exact in real arithmetic; in Float32 they change results by rounding
/// only (checked against PyTorch in the parity tests).
final class WinogradWeights: @unchecked Sendable {
    private let lock = NSLock()
    private var transformed: [Float]?

    /// U = G g Gᵀ for every (out, in) channel pair, laid out [16][Cout][Cin].
    func get(for conv: Conv2D) -> [Float] {
        lock.lock()
        defer { lock.unlock() }
        if let transformed { return transformed }
        let (cout, cin) = (conv.outChannels, conv.inChannels)
        var u = [Float](repeating: 0, count: 16 * cout * cin)
        conv.weight.withUnsafeBufferPointer { w in
            for co in 0..<cout {
                for ci in 0..<cin {
                    let g = w.baseAddress! + (co * cin + ci) * 9
                    // t = G g (4×3), in Double so the only rounding is the final one.
                    var t = [Double](repeating: 0, count: 12)
                    for c in 0..<3 {
                        let g0 = Double(g[c]), g1 = Double(g[3 + c]), g2 = Double(g[6 + c])
                        t[c] = g0
                        t[3 + c] = (g0 + g1 + g2) / 2
                        t[6 + c] = (g0 - g1 + g2) / 2
                        t[9 + c] = g2
                    }
                    for r in 0..<4 {
                        let a = t[r * 3], b = t[r * 3 + 1], c = t[r * 3 + 2]
                        let row = [a, (a + b + c) / 2, (a - b + c) / 2, c]
                        for col in 0..<4 { u[((r * 4 + col) * cout + co) * cin + ci] = Float(row[col]) }
                    }
                }
            }
        }
        transformed = u
        return u
    }
}

extension Conv2D {
    /// Winograd pays off once there are enough channels to keep the 16 GEMMs efficient.
    var usesWinograd: Bool {
        kernelHeight == 3 && kernelWidth == 3 && stride == 1 && padding == 1 && dilation == 1
            && inChannels >= 16 && outChannels >= 16
    }

    /// Target floats of the per-worker transform buffers (V and M), 8 MB.
    static let winogradBufferFloats = 1 << 21

    func forwardWinograd(_ input: Tensor, into output: Tensor, epilogue: ConvEpilogue, pool: ComputePool) {
        let (h, w) = (input.height, input.width)
        let (cin, cout) = (inChannels, outChannels)
        let tilesX = (w + 1) / 2, tilesY = (h + 1) / 2
        let floatsPerTileRow = 16 * (cin + cout) * tilesX
        var tileRowsPerBand = max(1, Self.winogradBufferFloats / floatsPerTileRow)
        let minBands = pool.threadCount * 4
        tileRowsPerBand = min(tileRowsPerBand, max(1, (tilesY + minBands - 1) / minBands))
        let bandsPerImage = (tilesY + tileRowsPerBand - 1) / tileRowsPerBand
        let maxTiles = tileRowsPerBand * tilesX
        let u = winogradWeights.get(for: self)
        let scratch = (0..<pool.threadCount).map { _ in
            (UnsafeMutablePointer<Float>.allocate(capacity: 16 * cin * maxTiles),
             UnsafeMutablePointer<Float>.allocate(capacity: 16 * cout * maxTiles),
             // 4 zero-padded input rows, then 16 rows of per-tile partial transforms.
             UnsafeMutablePointer<Float>.allocate(capacity: 4 * (w + 4) + 16 * tilesX + 2 * (2 * tilesX)))
        }
        defer { scratch.forEach { $0.0.deallocate(); $0.1.deallocate(); $0.2.deallocate() } }
        let plane = h * w
        u.withUnsafeBufferPointer { uBuffer in
            bias.withUnsafeBufferPointer { biasBuffer in
                pool.parallelFor(input.batch * bandsPerImage) { item, worker in
                    let n = item / bandsPerImage
                    let ty0 = (item % bandsPerImage) * tileRowsPerBand
                    let ty1 = min(tilesY, ty0 + tileRowsPerBand)
                    let tiles = (ty1 - ty0) * tilesX
                    let (v, m, temp) = scratch[worker]
                    let rowWidth = w + 4
                    let rows = temp                       // 4 rows; input x sits at index x + 1
                    let partial = temp + 4 * rowWidth     // [k][r] rows of tilesX
                    let outRows = partial + 16 * tilesX   // even and odd output columns of one output row
                    let image = input.storage + n * cin * plane
                    let step = cin * tiles
                    // Input transform, vectorised along a row of tiles:
                    // V[4i + k][ci][t] = (Bᵀ d B)[i][k] for the 4×4 input tile d of tile t.
                    for ci in 0..<cin {
                        let src = image + ci * plane
                        for ty in ty0..<ty1 {
                            for r in 0..<4 {
                                let y = 2 * ty - 1 + r
                                let row = rows + r * rowWidth
                                row.update(repeating: 0, count: rowWidth)
                                if y >= 0 && y < h { (row + 1).update(from: src + y * w, count: w) }
                            }
                            // Columns first (d B): for each of the 4 rows, four partial rows over the tiles.
                            for r in 0..<4 {
                                let row = rows + r * rowWidth
                                let p0 = partial + (0 * 4 + r) * tilesX, p1 = partial + (1 * 4 + r) * tilesX
                                let p2 = partial + (2 * 4 + r) * tilesX, p3 = partial + (3 * 4 + r) * tilesX
                                for tx in 0..<tilesX {
                                    let a = row[2 * tx], b = row[2 * tx + 1], e = row[2 * tx + 2], f = row[2 * tx + 3]
                                    p0[tx] = a - e
                                    p1[tx] = b + e
                                    p2[tx] = e - b
                                    p3[tx] = b - f
                                }
                            }
                            // Then rows (Bᵀ ·), written to V contiguous along the tiles.
                            let t0 = (ty - ty0) * tilesX
                            for k in 0..<4 {
                                let r0 = partial + (k * 4) * tilesX, r1 = r0 + tilesX, r2 = r1 + tilesX, r3 = r2 + tilesX
                                let v0 = v + (0 * 4 + k) * step + ci * tiles + t0
                                let v1 = v + (1 * 4 + k) * step + ci * tiles + t0
                                let v2 = v + (2 * 4 + k) * step + ci * tiles + t0
                                let v3 = v + (3 * 4 + k) * step + ci * tiles + t0
                                for tx in 0..<tilesX {
                                    v0[tx] = r0[tx] - r2[tx]
                                    v1[tx] = r1[tx] + r2[tx]
                                    v2[tx] = r2[tx] - r1[tx]
                                    v3[tx] = r1[tx] - r3[tx]
                                }
                            }
                        }
                    }
                    // 16 GEMMs: M[ξ] = U[ξ] · V[ξ].
                    for xi in 0..<16 {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(cout), Int32(tiles), Int32(cin),
                                    1, uBuffer.baseAddress! + xi * cout * cin, Int32(cin),
                                    v + xi * cin * tiles, Int32(tiles), 0, m + xi * cout * tiles, Int32(tiles))
                    }
                    // Output transform Aᵀ M A along each row of tiles, then bias and epilogue on whole output rows.
                    let mStep = cout * tiles
                    for co in 0..<cout {
                        let bv = biasBuffer[co]
                        let outPlane = output.storage + (n * cout + co) * plane
                        var residualPlane: UnsafeMutablePointer<Float>? = nil
                        if case .addThenReLU(let residual) = epilogue { residualPlane = residual.storage + (n * cout + co) * plane }
                        var relu = true
                        if case .none = epilogue { relu = false }
                        for ty in ty0..<ty1 {
                            let t0 = (ty - ty0) * tilesX
                            let mp = m + co * tiles + t0
                            // Rows (Aᵀ m) for each column k, as contiguous loops along the tiles…
                            for k in 0..<4 {
                                let m0 = mp + k * mStep, m1 = mp + (4 + k) * mStep
                                let m2 = mp + (8 + k) * mStep, m3 = mp + (12 + k) * mStep
                                let sk = partial + k * tilesX, qk = partial + (4 + k) * tilesX
                                for tx in 0..<tilesX {
                                    sk[tx] = m0[tx] + m1[tx] + m2[tx]
                                    qk[tx] = m1[tx] - m2[tx] - m3[tx]
                                }
                            }
                            // …then columns (· A): even and odd output columns of the two output rows.
                            for (dy, base) in [(0, 0), (1, 4)] where 2 * ty + dy < h {
                                let r0 = partial + base * tilesX, r1 = r0 + tilesX, r2 = r1 + tilesX, r3 = r2 + tilesX
                                let even = outRows, odd = outRows + tilesX
                                for tx in 0..<tilesX {
                                    even[tx] = r0[tx] + r1[tx] + r2[tx]
                                    odd[tx] = r1[tx] - r2[tx] - r3[tx]
                                }
                                let offset = (2 * ty + dy) * w
                                let dst = outPlane + offset
                                let pairs = w / 2
                                if let residualPlane {
                                    let res = residualPlane + offset
                                    for i in 0..<pairs {
                                        dst[2 * i] = max(even[i] + bv + res[2 * i], 0)
                                        dst[2 * i + 1] = max(odd[i] + bv + res[2 * i + 1], 0)
                                    }
                                    if w % 2 == 1 { dst[w - 1] = max(even[pairs] + bv + res[w - 1], 0) }
                                } else if relu {
                                    for i in 0..<pairs {
                                        dst[2 * i] = max(even[i] + bv, 0)
                                        dst[2 * i + 1] = max(odd[i] + bv, 0)
                                    }
                                    if w % 2 == 1 { dst[w - 1] = max(even[pairs] + bv, 0) }
                                } else {
                                    for i in 0..<pairs {
                                        dst[2 * i] = even[i] + bv
                                        dst[2 * i + 1] = odd[i] + bv
                                    }
                                    if w % 2 == 1 { dst[w - 1] = even[pairs] + bv }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
