import CBLAS
import TensorEngine

/// Winograd F(2×2, 3×3) for training's 3×3, stride-1, padding-1 convolutions
/// (nearly all of a UNet++'s multiply-adds): forward, dX and dW each become 16
/// GEMMs over 2×2 output tiles, 16 multiplies per channel pair and tile instead
/// of 36. The transforms are exact in real arithmetic; Float32 rounding moves
/// results by ~1e-6 relative (OpGradientTests compare against im2col).
///
/// - forward: Y = Aᵀ [U · V] A with U = G g Gᵀ and V = Bᵀ d B;
/// - dX is the convolution of dY with the flipped, transposed kernel. Flipping g
///   swaps rows 0 and 3 of G, so its U is U with ξ's rows and columns permuted,
///   transposed: the dX GEMMs read U itself, no second weight transform;
/// - dW: dU[ξ] = Σ over tiles of dM[ξ] · V[ξ]ᵀ with dM = A dY Aᵀ, then dW = Gᵀ dU G.
///
/// Tiles of all images in the batch form one sequence of tile rows, cut into
/// chunks that are the unit of work: small planes (16×16 at batch 4) still give
/// GEMMs with hundreds of columns. Layouts: V [16][C][tiles], M [16][C][tiles],
/// U [16][Cout][Cin], ξ = 4·row + column.
enum Winograd3x3 {
    /// ξ of the flipped kernel's transform: rows and columns 0 ↔ 3.
    static let flipped: [Int] = (0..<16).map { xi in
        let p = [3, 1, 2, 0]
        return 4 * p[xi / 4] + p[xi % 4]
    }

    /// Target floats of one worker's V + M chunk buffers (2 MB: measured user CPU time
    /// per step fell from 8 MB chunks to 2 MB; the GEMMs still get ≥ 128 tiles).
    static let chunkFloats = 1 << 19
    /// Fewer tiles than this in the whole batch and the GEMMs are too thin to pay off.
    /// (64, which would take in 8×8 planes at batch 4, was tried: each op still matched
    /// im2col within 1e-6, yet the small parity model's gradients moved by 1.8e-3 of
    /// their max against 2e-6 at 256 — not understood, so not taken.)
    static let minimumTiles = 256

    static func applies(kernel: Int, stride: Int, padding: Int, inChannels: Int, outChannels: Int,
                        batch: Int, height: Int, width: Int) -> Bool {
        kernel == 3 && stride == 1 && padding == 1 && inChannels >= 8 && outChannels >= 8
            && batch * ((height + 1) / 2) * ((width + 1) / 2) >= minimumTiles
    }

    /// Overrides of the automatic chunking, for tests that need several chunks and splits on small tensors.
    struct Tuning {
        var chunkRows: Int?
        var splits: Int?
        static let automatic = Tuning()
    }

    /// How a convolution's tile rows are cut into chunks and its output channels into splits.
    struct Plan {
        let tilesX: Int
        let tilesY: Int
        let rowCount: Int       // batch · tilesY
        let rowsPerChunk: Int
        let chunks: Int
        let splits: Int
        let channelsPerSplit: Int

        init(batch: Int, height: Int, width: Int, inChannels: Int, outChannels: Int, threads: Int, tuning: Tuning) {
            tilesX = (width + 1) / 2
            tilesY = (height + 1) / 2
            rowCount = batch * tilesY
            var rows = max(1, Winograd3x3.chunkFloats / (16 * (inChannels + outChannels) * tilesX))
            // Enough chunks to keep every worker busy, as long as a chunk keeps ≥ 128 tiles.
            let balanced = (rowCount + 4 * threads - 1) / (4 * threads)
            rows = min(rows, max(balanced, (128 + tilesX - 1) / tilesX))
            rowsPerChunk = min(tuning.chunkRows ?? rows, rowCount)
            chunks = (rowCount + rowsPerChunk - 1) / rowsPerChunk
            // Too few chunks for the workers: split output channels as well (each split redoes V).
            var splits = 1
            while chunks * splits < 2 * threads && outChannels / (2 * splits) >= 16 { splits *= 2 }
            self.splits = min(tuning.splits ?? splits, outChannels)
            channelsPerSplit = (outChannels + self.splits - 1) / self.splits
        }

        var maxTiles: Int { rowsPerChunk * tilesX }
    }

    // MARK: weights

    /// U = G g Gᵀ for every (out, in) pair of a [Cout, Cin, 3, 3] weight, into [16][Cout][Cin];
    /// eight input channels at a time, so each of the 16 outputs is one vector store.
    static func transformWeights(_ weight: UnsafePointer<Float>, outChannels: Int, inChannels: Int,
                                 into u: UnsafeMutablePointer<Float>, pool: ComputePool) {
        let step = outChannels * inChannels
        pool.parallelFor(outChannels) { co in
            var ci = 0
            while ci < inChannels {
                let lanes = min(8, inChannels - ci)
                let g = weight + (co * inChannels + ci) * 9
                @inline(__always) func tap(_ k: Int) -> Vector.V {
                    var v = Vector.V()
                    for l in 0..<lanes { v[l] = g[9 * l + k] }
                    return v
                }
                // t = G g (4×3), column c from the kernel's column c.
                let out = u + co * inChannels + ci
                @inline(__always) func emit(_ r: Int, _ a: Vector.V, _ b: Vector.V, _ c: Vector.V) {
                    let row = (a, 0.5 * (a + b + c), 0.5 * (a - b + c), c)
                    if lanes == 8 {
                        Vector.store(row.0, out + (4 * r) * step)
                        Vector.store(row.1, out + (4 * r + 1) * step)
                        Vector.store(row.2, out + (4 * r + 2) * step)
                        Vector.store(row.3, out + (4 * r + 3) * step)
                    } else {
                        for l in 0..<lanes {
                            out[(4 * r) * step + l] = row.0[l]
                            out[(4 * r + 1) * step + l] = row.1[l]
                            out[(4 * r + 2) * step + l] = row.2[l]
                            out[(4 * r + 3) * step + l] = row.3[l]
                        }
                    }
                }
                let (g00, g01, g02) = (tap(0), tap(1), tap(2))
                let (g10, g11, g12) = (tap(3), tap(4), tap(5))
                let (g20, g21, g22) = (tap(6), tap(7), tap(8))
                emit(0, g00, g01, g02)
                emit(1, 0.5 * (g00 + g10 + g20), 0.5 * (g01 + g11 + g21), 0.5 * (g02 + g12 + g22))
                emit(2, 0.5 * (g00 - g10 + g20), 0.5 * (g01 - g11 + g21), 0.5 * (g02 - g12 + g22))
                emit(3, g20, g21, g22)
                ci += lanes
            }
        }
    }

    // MARK: convolution (forward and dX)

    /// output (=, or += with `accumulate`) the 3×3 stride-1 pad-1 convolution of
    /// `input` with the transformed weights `u` [16][outC][inC], plus `bias`. With
    /// `transposedFlipped`, `u` is the transform of a layer whose *input* has
    /// outC channels ([16][inC][outC]) and the convolution is that layer's dX.
    static func convolve(_ input: Tensor, u: UnsafePointer<Float>, transposedFlipped: Bool,
                         bias: UnsafePointer<Float>?, into output: Tensor, accumulate: Bool, tuning: Tuning = .automatic,
                         pool: ComputePool) {
        let (batch, inC, h, w) = (input.batch, input.channels, input.height, input.width)
        let outC = output.channels
        precondition(output.batch == batch && output.height == h && output.width == w, "winograd output \(output.shape) for \(input.shape)")
        let plan = Plan(batch: batch, height: h, width: w, inChannels: inC, outChannels: outC, threads: pool.threadCount,
                        tuning: tuning)
        let tilesX = plan.tilesX
        let maxTiles = plan.maxTiles
        let vFloats = 16 * inC * maxTiles, mFloats = 16 * plan.channelsPerSplit * maxTiles
        ColumnScratch.shared.with(pool: pool, capacity: vFloats + mFloats + rowScratch(tilesX)) { scratch in
            pool.parallelFor(plan.chunks * plan.splits) { item, worker in
                let chunk = item / plan.splits, split = item % plan.splits
                let row0 = chunk * plan.rowsPerChunk, rows = min(plan.rowsPerChunk, plan.rowCount - row0)
                let tiles = rows * tilesX
                let co0 = split * plan.channelsPerSplit
                let coCount = min(plan.channelsPerSplit, outC - co0)
                if coCount <= 0 { return }
                let v = scratch[worker], m = v + vFloats, temp = m + mFloats
                inputTransform(input, row0: row0, rows: rows, plan: plan, v: v, temp: temp)
                for xi in 0..<16 {
                    if transposedFlipped {
                        // A[ξ] = U[flipped ξ]ᵀ: U is [layer out = our in][layer in = our out].
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(coCount), Int32(tiles), Int32(inC),
                                    1, u + flipped[xi] * inC * outC + co0, Int32(outC),
                                    v + xi * inC * tiles, Int32(tiles), 0, m + xi * coCount * tiles, Int32(tiles))
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(coCount), Int32(tiles), Int32(inC),
                                    1, u + xi * outC * inC + co0 * inC, Int32(inC),
                                    v + xi * inC * tiles, Int32(tiles), 0, m + xi * coCount * tiles, Int32(tiles))
                    }
                }
                outputTransform(m, channels: coCount, co0: co0, row0: row0, rows: rows, plan: plan, bias: bias,
                                into: output, accumulate: accumulate, temp: temp)
            }
        }
    }

    /// Floats of a worker's row scratch: 8 deinterleaved input rows (or 16 partial rows).
    static func rowScratch(_ tilesX: Int) -> Int { 16 * lineWidth(tilesX) }
    static func lineWidth(_ tilesX: Int) -> Int { (tilesX + 16) & ~7 }

    /// V[4i + k][c][t] = (Bᵀ d B)[i][k] for the 4×4 input tile d of every tile t of
    /// tile rows [row0, row0 + rows) and every input channel; zero outside the image.
    /// Each input row is split into even and odd columns first, so the transform
    /// reads unit-stride vectors (eight tiles at a time).
    static func inputTransform(_ input: Tensor, row0: Int, rows: Int, plan: Plan, v: UnsafeMutablePointer<Float>,
                               temp: UnsafeMutablePointer<Float>) {
        let (channels, h, w) = (input.channels, input.height, input.width)
        let tilesX = plan.tilesX, tiles = rows * tilesX
        let line = lineWidth(tilesX)
        let step = channels * tiles
        let vectorEnd = tilesX & ~7
        // Channel by channel, down the tile rows: each plane is read as one stream.
        for c in 0..<channels {
            for j in 0..<rows {
                let (n, ty) = ((row0 + j) / plan.tilesY, (row0 + j) % plan.tilesY)
                let t0 = j * tilesX
                let src = input.storage + (n * channels + c) * h * w
                // Padded row x' = x + 1: E[i] = x'[2i] = x[2i − 1], O[i] = x'[2i + 1] = x[2i]; tilesX + 1 of each.
                for r in 0..<4 {
                    let y = 2 * ty - 1 + r
                    let e = temp + (2 * r) * line, o = temp + (2 * r + 1) * line
                    if y < 0 || y >= h {
                        e.update(repeating: 0, count: tilesX + 1)
                        o.update(repeating: 0, count: tilesX + 1)
                        continue
                    }
                    let row = src + y * w
                    e[0] = 0
                    let pairs = w / 2
                    var i = 0
                    while i + 8 <= pairs {
                        let chunk = UnsafeRawPointer(row + 2 * i).loadUnaligned(as: SIMD16<Float>.self)
                        UnsafeMutableRawPointer(o + i).storeBytes(of: chunk.evenHalf, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(e + i + 1).storeBytes(of: chunk.oddHalf, as: SIMD8<Float>.self)
                        i += 8
                    }
                    while i < pairs {
                        o[i] = row[2 * i]
                        e[i + 1] = row[2 * i + 1]
                        i += 1
                    }
                    if w % 2 == 1 {
                        o[pairs] = row[w - 1]
                        e[pairs + 1] = 0
                        o[pairs + 1] = 0
                    } else {
                        o[pairs] = 0
                    }
                }
                let base = v + c * tiles + t0
                var tx = 0
                while tx < vectorEnd {
                    transformTiles(SIMD8<Float>.self, temp, line, tx, base, step)
                    tx += 8
                }
                if tx < tilesX {
                    // The last tilesX % 8 tiles: eight lanes into a side buffer, the valid ones copied.
                    let side = temp + 8 * line
                    transformTiles(SIMD8<Float>.self, temp, line, tx, side - tx, 8)
                    for xi in 0..<16 { (base + xi * step + tx).update(from: side + xi * 8, count: tilesX - tx) }
                }
            }
        }
    }

    /// Bᵀ d B for `Vector.scalarCount` consecutive tiles from tx, from the 8 split rows.
    @inline(__always)
    private static func transformTiles<Vector: SIMD>(_: Vector.Type, _ rows: UnsafeMutablePointer<Float>, _ line: Int,
                                                     _ tx: Int, _ out: UnsafeMutablePointer<Float>, _ step: Int)
        where Vector.Scalar == Float {
        @inline(__always) func load(_ p: UnsafeMutablePointer<Float>) -> Vector {
            UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
        }
        @inline(__always) func store(_ value: Vector, _ p: UnsafeMutablePointer<Float>) {
            UnsafeMutableRawPointer(p).storeBytes(of: value, as: Vector.self)
        }
        // d B for each of the 4 rows: (d0 − d2, d1 + d2, d2 − d1, d1 − d3).
        @inline(__always) func row(_ r: Int) -> (Vector, Vector, Vector, Vector) {
            let e = rows + (2 * r) * line + tx, o = rows + (2 * r + 1) * line + tx
            let d0 = load(e), d1 = load(o), d2 = load(e + 1), d3 = load(o + 1)
            return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
        }
        let q0 = row(0), q1 = row(1), q2 = row(2), q3 = row(3)
        // Bᵀ ·: for column k, (q0 − q2, q1 + q2, q2 − q1, q1 − q3) over the rows.
        @inline(__always) func column(_ k: Int, _ a: Vector, _ b: Vector, _ c: Vector, _ d: Vector) {
            store(a - c, out + k * step + tx)
            store(b + c, out + (4 + k) * step + tx)
            store(c - b, out + (8 + k) * step + tx)
            store(b - d, out + (12 + k) * step + tx)
        }
        column(0, q0.0, q1.0, q2.0, q3.0)
        column(1, q0.1, q1.1, q2.1, q3.1)
        column(2, q0.2, q1.2, q2.2, q3.2)
        column(3, q0.3, q1.3, q2.3, q3.3)
    }

    /// Y = Aᵀ M A for channels [co0, co0 + channels) of tile rows [row0, row0 + rows),
    /// plus bias, written (or added) to the output planes inside the image.
    static func outputTransform(_ m: UnsafePointer<Float>, channels: Int, co0: Int, row0: Int, rows: Int, plan: Plan,
                                bias: UnsafePointer<Float>?, into output: Tensor, accumulate: Bool,
                                temp: UnsafeMutablePointer<Float>) {
        let (outC, h, w) = (output.channels, output.height, output.width)
        let tilesX = plan.tilesX, tiles = rows * tilesX
        let mStep = channels * tiles
        let partial = temp            // s_k, q_k: 8 rows of tilesX (the tiles after the last whole vector)
        for c in 0..<channels {
            let bv = bias?[co0 + c] ?? 0
            for j in 0..<rows {
                let (n, ty) = ((row0 + j) / plan.tilesY, (row0 + j) % plan.tilesY)
                let mp = m + c * tiles + j * tilesX
                let plane = output.storage + (n * outC + co0 + c) * h * w
                let row0 = plane + 2 * ty * w, row1 = row0 + w
                let hasRow1 = 2 * ty + 1 < h
                // Whole vectors of 8 tiles whose 16 output columns lie inside the image…
                let pairs = w / 2
                var tx = 0
                let b = Vector.V(repeating: bv)
                while tx + 8 <= pairs {
                    @inline(__always) func m(_ xi: Int) -> Vector.V { Vector.load(mp + xi * mStep + tx) }
                    var s = (Vector.V(), Vector.V(), Vector.V(), Vector.V()), q = s
                    // Aᵀ m per column k: s_k = m0k + m1k + m2k, q_k = m1k − m2k − m3k.
                    s.0 = m(0) + m(4) + m(8);   q.0 = m(4) - m(8) - m(12)
                    s.1 = m(1) + m(5) + m(9);   q.1 = m(5) - m(9) - m(13)
                    s.2 = m(2) + m(6) + m(10);  q.2 = m(6) - m(10) - m(14)
                    s.3 = m(3) + m(7) + m(11);  q.3 = m(7) - m(11) - m(15)
                    // · A: even columns r0 + r1 + r2, odd columns r1 − r2 − r3.
                    Self.storePairs(s.0 + s.1 + s.2 + b, s.1 - s.2 - s.3 + b, row0 + 2 * tx, accumulate)
                    if hasRow1 { Self.storePairs(q.0 + q.1 + q.2 + b, q.1 - q.2 - q.3 + b, row1 + 2 * tx, accumulate) }
                    tx += 8
                }
                if tx == tilesX { continue }
                // …then the remaining tiles one by one (and the odd last column).
                let tail = tilesX - tx
                for k in 0..<4 {
                    let m0 = mp + k * mStep + tx, m1 = mp + (4 + k) * mStep + tx
                    let m2 = mp + (8 + k) * mStep + tx, m3 = mp + (12 + k) * mStep + tx
                    let sk = partial + k * tilesX, qk = partial + (4 + k) * tilesX
                    for i in 0..<tail {
                        sk[i] = m0[i] + m1[i] + m2[i]
                        qk[i] = m1[i] - m2[i] - m3[i]
                    }
                }
                for dy in 0..<2 where 2 * ty + dy < h {
                    let r0 = partial + 4 * dy * tilesX, r1 = r0 + tilesX, r2 = r1 + tilesX, r3 = r2 + tilesX
                    let dst = plane + (2 * ty + dy) * w
                    for i in 0..<tail {
                        let even = r0[i] + r1[i] + r2[i] + bv, odd = r1[i] - r2[i] - r3[i] + bv
                        let x = 2 * (tx + i)
                        dst[x] = accumulate ? dst[x] + even : even
                        if x + 1 < w { dst[x + 1] = accumulate ? dst[x + 1] + odd : odd }
                    }
                }
            }
        }
    }

    /// dst[2i] (+)= even[i], dst[2i + 1] (+)= odd[i] for i in 0..<8.
    @inline(__always)
    static func storePairs(_ even: Vector.V, _ odd: Vector.V, _ dst: UnsafeMutablePointer<Float>, _ accumulate: Bool) {
        var lo = Vector.V(even[0], odd[0], even[1], odd[1], even[2], odd[2], even[3], odd[3])
        var hi = Vector.V(even[4], odd[4], even[5], odd[5], even[6], odd[6], even[7], odd[7])
        if accumulate {
            lo += Vector.load(dst)
            hi += Vector.load(dst + 8)
        }
        Vector.store(lo, dst)
        Vector.store(hi, dst + 8)
    }

    // MARK: weight gradient

    /// dw [Cout, Cin, 3, 3] += the weight gradient of the convolution of `input`
    /// that produced an output with gradient `dy`. Chunks are dealt round-robin to
    /// a fixed number of slots (4, or the thread count if larger), each summing its
    /// chunks in order into its own dU; the slots are then added in order, so the
    /// result does not depend on which thread ran what.
    static func weightGradient(input: Tensor, outputGradient dy: Tensor, into dw: UnsafeMutablePointer<Float>,
                               tuning: Tuning = .automatic, pool: ComputePool) {
        let (batch, inC, h, w) = (input.batch, input.channels, input.height, input.width)
        let outC = dy.channels
        let plan = Plan(batch: batch, height: h, width: w, inChannels: inC, outChannels: outC, threads: pool.threadCount,
                        tuning: tuning)
        let tilesX = plan.tilesX
        let slots = min(plan.chunks, max(4, pool.threadCount))
        let uFloats = 16 * outC * inC
        let du = UnsafeMutablePointer<Float>.allocate(capacity: slots * uFloats)
        defer { du.deallocate() }
        let vFloats = 16 * inC * plan.maxTiles, mFloats = 16 * plan.channelsPerSplit * plan.maxTiles
        ColumnScratch.shared.with(pool: pool, capacity: vFloats + mFloats + rowScratch(tilesX)) { scratch in
            pool.parallelFor(slots * plan.splits) { item, worker in
                let slot = item / plan.splits, split = item % plan.splits
                let co0 = split * plan.channelsPerSplit
                let coCount = min(plan.channelsPerSplit, outC - co0)
                if coCount <= 0 { return }
                let v = scratch[worker], m = v + vFloats, temp = m + mFloats
                let target = du + slot * uFloats
                var first = true
                for chunk in stride(from: slot, to: plan.chunks, by: slots) {
                    let row0 = chunk * plan.rowsPerChunk, rows = min(plan.rowsPerChunk, plan.rowCount - row0)
                    let tiles = rows * tilesX
                    inputTransform(input, row0: row0, rows: rows, plan: plan, v: v, temp: temp)
                    gradientTransform(dy, co0: co0, channels: coCount, row0: row0, rows: rows, plan: plan, into: m, temp: temp)
                    // dU[ξ][co0…][ci] (+)= dM[ξ] · V[ξ]ᵀ
                    for xi in 0..<16 {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(coCount), Int32(inC), Int32(tiles),
                                    1, m + xi * coCount * tiles, Int32(tiles), v + xi * inC * tiles, Int32(tiles),
                                    first ? 0 : 1, target + xi * outC * inC + co0 * inC, Int32(inC))
                    }
                    first = false
                }
            }
        }
        // dW += Gᵀ (Σ slots dU) G, per (out, in) pair, eight input channels at a time.
        pool.parallelFor(outC) { co in
            var ci = 0
            while ci < inC {
                let lanes = min(8, inC - ci)
                let offset = co * inC + ci
                @inline(__always) func u(_ xi: Int) -> Vector.V {
                    var s = Vector.V()
                    for slot in 0..<slots {
                        let p = du + slot * uFloats + xi * outC * inC + offset
                        if lanes == 8 {
                            s += Vector.load(p)
                        } else {
                            for l in 0..<lanes { s[l] += p[l] }
                        }
                    }
                    return s
                }
                // t = dU G, row by row: (u0 + (u1 + u2)/2, (u1 − u2)/2, (u1 + u2)/2 + u3).
                @inline(__always) func row(_ i: Int) -> (Vector.V, Vector.V, Vector.V) {
                    let (u0, u1, u2, u3) = (u(4 * i), u(4 * i + 1), u(4 * i + 2), u(4 * i + 3))
                    return (u0 + 0.5 * (u1 + u2), 0.5 * (u1 - u2), 0.5 * (u1 + u2) + u3)
                }
                let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3)
                // Gᵀ t, column by column, added into the 3×3 kernels.
                let g = dw + offset * 9
                @inline(__always) func add(_ b: Int, _ c0: Vector.V, _ c1: Vector.V, _ c2: Vector.V, _ c3: Vector.V) {
                    let k0 = c0 + 0.5 * (c1 + c2), k1 = 0.5 * (c1 - c2), k2 = 0.5 * (c1 + c2) + c3
                    for l in 0..<lanes {
                        g[9 * l + b] += k0[l]
                        g[9 * l + 3 + b] += k1[l]
                        g[9 * l + 6 + b] += k2[l]
                    }
                }
                add(0, r0.0, r1.0, r2.0, r3.0)
                add(1, r0.1, r1.1, r2.1, r3.1)
                add(2, r0.2, r1.2, r2.2, r3.2)
                ci += lanes
            }
        }
    }

    /// dM[4i + k][c][t] = (A dY Aᵀ)[i][k] for the 2×2 gradient tile of every tile
    /// t of tile rows [row0, row0 + rows), channels [co0, co0 + channels); zero outside the image.
    static func gradientTransform(_ dy: Tensor, co0: Int, channels: Int, row0: Int, rows: Int, plan: Plan,
                                  into m: UnsafeMutablePointer<Float>, temp: UnsafeMutablePointer<Float>) {
        let (outC, h, w) = (dy.channels, dy.height, dy.width)
        let tilesX = plan.tilesX, tiles = rows * tilesX
        let step = channels * tiles
        let even = temp, odd = temp + tilesX           // one gradient row, split by column parity
        let s = temp + 2 * tilesX                       // s_k[a]: [k][a] rows of tilesX (8 rows)
        for c in 0..<channels {
            for j in 0..<rows {
                let (n, ty) = ((row0 + j) / plan.tilesY, (row0 + j) % plan.tilesY)
                let plane = dy.storage + (n * outC + co0 + c) * h * w
                for a in 0..<2 {
                    let y = 2 * ty + a
                    let s0 = s + a * tilesX, s1 = s + (2 + a) * tilesX, s2 = s + (4 + a) * tilesX, s3 = s + (6 + a) * tilesX
                    if y >= h {
                        for tx in 0..<tilesX { s0[tx] = 0; s1[tx] = 0; s2[tx] = 0; s3[tx] = 0 }
                        continue
                    }
                    let src = plane + y * w
                    let pairs = w / 2
                    var i = 0
                    while i + 8 <= pairs {
                        let chunk = UnsafeRawPointer(src + 2 * i).loadUnaligned(as: SIMD16<Float>.self)
                        Vector.store(chunk.evenHalf, even + i)
                        Vector.store(chunk.oddHalf, odd + i)
                        i += 8
                    }
                    while i < pairs {
                        even[i] = src[2 * i]
                        odd[i] = src[2 * i + 1]
                        i += 1
                    }
                    if w % 2 == 1 { even[pairs] = src[w - 1]; odd[pairs] = 0 }
                    // Along x: (y0, y1) → (y0, y0 + y1, y0 − y1, −y1).
                    for tx in 0..<tilesX {
                        let y0 = even[tx], y1 = odd[tx]
                        s0[tx] = y0
                        s1[tx] = y0 + y1
                        s2[tx] = y0 - y1
                        s3[tx] = -y1
                    }
                }
                // Along y, into dM contiguous along the tiles.
                let base = m + c * tiles + j * tilesX
                for k in 0..<4 {
                    let a0 = s + (2 * k) * tilesX, a1 = a0 + tilesX
                    let d0 = base + k * step, d1 = base + (4 + k) * step
                    let d2 = base + (8 + k) * step, d3 = base + (12 + k) * step
                    for tx in 0..<tilesX {
                        d0[tx] = a0[tx]
                        d1[tx] = a0[tx] + a1[tx]
                        d2[tx] = a0[tx] - a1[tx]
                        d3[tx] = -a1[tx]
                    }
                }
            }
        }
    }
}
