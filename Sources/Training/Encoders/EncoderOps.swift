import TensorEngine

/// The parameter-free ops the DenseNet and HRNet encoders add to `TrainOps`,
/// each with its backward, on the ComputePool.
enum EncoderOps {
    /// `torch.cat(parts, dim=1)` of tensors with the same batch and spatial size
    /// (a dense layer's input); backward hands each part its channels' gradient.
    static func concat(_ parts: [Node], tape: Tape?, pool: ComputePool = .shared) -> Node {
        precondition(!parts.isEmpty, "nothing to concatenate")
        // Backward fills each part's planes from parallel items: every part must be a different node.
        precondition(Set(parts.map(ObjectIdentifier.init)).count == parts.count, "a node is concatenated twice")
        let y = Node(Ops.concat(parts.map(\.value), pool: pool))
        tape?.record {
            guard let dy = y.grad else { return }
            let (batch, outC, plane) = (dy.batch, dy.channels, dy.height * dy.width)
            // For every output channel: its part's gradient buffer (nil when the part needs none),
            // the part's channel count and the channel within it.
            var targets: [(Tensor?, Int, Int)] = []
            for part in parts {
                let g = part.requiresGradient ? part.gradBuffer() : nil
                for c in 0..<part.value.channels { targets.append((g, part.value.channels, c)) }
            }
            pool.parallelFor(batch * outC) { index in
                let (n, c) = (index / outC, index % outC)
                let (target, channels, channel) = targets[c]
                guard let buffer = target else { return }
                let d = buffer.storage + (n * channels + channel) * plane, g = dy.storage + index * plane
                for i in 0..<plane { d[i] += g[i] }
            }
        }
        return y
    }

    /// Σ_j nearest-upsample(x_j, factor_j), summed in the terms' order (HRNet's fuse:
    /// `y = f_0(x_0); y = y + f_1(x_1); …`, with `Upsample(scale_factor=2^k)` on the
    /// paths from lower branches; factor 1 is the tensor itself). Backward gives
    /// each term the sum of the gradient over its factor × factor blocks.
    static func sumUpsampled(_ terms: [(Node, factor: Int)], tape: Tape?, pool: ComputePool = .shared) -> Node {
        precondition(!terms.isEmpty, "nothing to sum")
        let first = terms[0].0.value
        let shape = [first.batch, first.channels, first.height * terms[0].factor, first.width * terms[0].factor]
        for (node, factor) in terms {
            let v = node.value
            precondition(factor >= 1 && [v.batch, v.channels, v.height * factor, v.width * factor] == shape,
                         "cannot sum \(v.shape) upsampled by \(factor) into \(shape)")
        }
        let (h, w) = (shape[2], shape[3])
        let output = Tensor(shape: shape)
        pool.parallelFor(shape[0] * shape[1]) { p in
            let d = output.storage + p * h * w
            for (t, (node, factor)) in terms.enumerated() {
                let (sh, sw) = (h / factor, w / factor)
                let s = node.value.storage + p * sh * sw
                for y in 0..<h {
                    let row = d + y * w, src = s + (y / factor) * sw
                    if t == 0 {
                        if factor == 1 { row.update(from: src, count: w) } else { for x in 0..<w { row[x] = src[x / factor] } }
                    } else {
                        if factor == 1 { for x in 0..<w { row[x] += src[x] } } else { for x in 0..<w { row[x] += src[x / factor] } }
                    }
                }
            }
        }
        let y = Node(output)
        tape?.record {
            guard let dy = y.grad else { return }
            for (node, factor) in terms where node.requiresGradient {
                let dx = node.gradBuffer()
                let (sh, sw) = (h / factor, w / factor)
                pool.parallelFor(shape[0] * shape[1]) { p in
                    let g = dy.storage + p * h * w, d = dx.storage + p * sh * sw
                    for y in 0..<h {
                        let row = g + y * w, dst = d + (y / factor) * sw
                        if factor == 1 { for x in 0..<w { dst[x] += row[x] } } else { for x in 0..<w { dst[x / factor] += row[x] } }
                    }
                }
            }
        }
        return y
    }
}
