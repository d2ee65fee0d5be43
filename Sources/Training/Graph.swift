import Foundation
import TensorEngine

/// A value in a training graph: its tensor and, after `Tape.backward`, the
/// gradient of the loss with respect to it (nil when nothing flowed back).
public final class Node {
    public let value: Tensor
    public private(set) var grad: Tensor?
    /// False for inputs: ops then skip the work of their gradient (the stem's dX).
    public let requiresGradient: Bool

    public init(_ value: Tensor, requiresGradient: Bool = true) {
        self.value = value
        self.requiresGradient = requiresGradient
    }

    /// The gradient buffer, zero-filled on first use; ops add into it.
    func gradBuffer() -> Tensor {
        if let grad { return grad }
        let g = Tensor(zeros: value.shape)
        grad = g
        return g
    }

    /// The gradient buffer for an op that writes every element: when nothing has
    /// flowed back yet it is created uninitialised and `accumulate` is false (the
    /// op stores instead of adding), saving a zero fill and a read per element.
    func gradBufferForWrite() -> (buffer: Tensor, accumulate: Bool) {
        if let grad { return (grad, true) }
        let g = Tensor(shape: value.shape)
        grad = g
        return (g, false)
    }

    func accumulate(_ g: Tensor, pool: ComputePool = .shared) {
        precondition(g.shape == value.shape, "gradient \(g.shape) for value \(value.shape)")
        let (buffer, add) = gradBufferForWrite()
        pool.chunks(g.count) { start, end in
            if add {
                Vector.add(buffer.storage + start, g.storage + start, buffer.storage + start, end - start)
            } else {
                (buffer.storage + start).update(from: g.storage + start, count: end - start)
            }
        }
    }
}

extension ComputePool {
    /// body(start, end) over 64K-element chunks of 0..<count, across the pool
    /// (elementwise work: the result does not depend on the split).
    func chunks(_ count: Int, _ body: (Int, Int) -> Void) {
        let chunk = 1 << 16
        parallelFor((count + chunk - 1) / chunk) { i in body(i * chunk, min(count, (i + 1) * chunk)) }
    }
}

/// Records what each op needs for its backward pass, in forward order; `backward`
/// replays them in reverse. A forward without a tape (evaluation) records nothing.
public final class Tape {
    private var steps: [() -> Void] = []

    public init() { _ = Self.heapSettings }

    /// A training step allocates and frees the same multi-MB activations and
    /// gradients every step. glibc serves blocks that large by mmap and returns
    /// them at free, so each step faulted in and zeroed them afresh (≈ 5 % of a
    /// UNet++ step's CPU time); kept in the heap they are reused. Set once, by the
    /// first tape: only processes that train.
    private static let heapSettings: Void = {
        #if canImport(Glibc)
        // mallopt lives in <malloc.h>, which Swift's Glibc module does not export.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(-3, 256 << 20)  // M_MMAP_THRESHOLD
        _ = mallopt(-1, 1 << 30)    // M_TRIM_THRESHOLD
        #endif
    }()

    func record(_ step: @escaping () -> Void) { steps.append(step) }

    /// Seeds `output`'s gradient with `seed` and runs every recorded step backwards.
    public func backward(from output: Node, seed: Tensor) {
        output.accumulate(seed)
        // Each step is dropped once run, releasing the activations and gradients
        // only it held: the peak is not all activations plus all gradients.
        while let step = steps.popLast() { step() }
    }
}

/// A trainable tensor under its state_dict key, with its gradient.
public final class Parameter {
    public let name: String
    public let value: Tensor
    public let grad: Tensor

    public init(name: String, value: Tensor) {
        self.name = name
        self.value = value
        grad = Tensor(zeros: value.shape)
    }

    public func zeroGrad() { grad.fill(0) }
}

/// Column buffers for im2col, one per worker of a pool, kept between calls and
/// grown to the largest request: a training step runs hundreds of convolutions,
/// and fresh multi-MB buffers each time cost page faults and zeroing. A call
/// holds its pool's set for its whole duration, so two threads training on one
/// pool never share a buffer.
final class ColumnScratch: @unchecked Sendable {
    static let shared = ColumnScratch()

    private final class Set {
        let lock = NSLock()
        var buffers: [UnsafeMutablePointer<Float>] = []
        var capacity = 0
    }

    private let lock = NSLock()
    private var sets: [ObjectIdentifier: Set] = [:]

    func with<R>(pool: ComputePool, capacity: Int, _ body: ([UnsafeMutablePointer<Float>]) -> R) -> R {
        lock.lock()
        let set = sets[ObjectIdentifier(pool)] ?? Set()
        sets[ObjectIdentifier(pool)] = set
        lock.unlock()
        set.lock.lock()
        defer { set.lock.unlock() }
        if set.capacity < capacity || set.buffers.count != pool.threadCount {
            set.buffers.forEach { $0.deallocate() }
            set.buffers = (0..<pool.threadCount).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: capacity) }
            set.capacity = capacity
        }
        return body(set.buffers)
    }
}
