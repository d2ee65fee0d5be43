/// A dense Float32 tensor in NCHW order (or any row-major shape).
/// Storage is a class so large activations move without copies; value
/// semantics are not needed because layers never mutate their inputs.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let storage: UnsafeMutablePointer<Float>
    public let count: Int

    public init(shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        storage = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    }

    public convenience init(zeros shape: [Int]) {
        self.init(shape: shape)
        storage.initialize(repeating: 0, count: count)
    }

    public convenience init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values do not fill shape \(shape)")
        self.init(shape: shape)
        values.withUnsafeBufferPointer { storage.initialize(from: $0.baseAddress!, count: count) }
    }

    deinit { storage.deallocate() }

    public var rank: Int { shape.count }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: storage, count: count) }
    public var array: [Float] { Array(buffer) }

    // NCHW accessors; the engine works on batch-1 images most of the time.
    public var batch: Int { shape[0] }
    public var channels: Int { shape[1] }
    public var height: Int { shape[2] }
    public var width: Int { shape[3] }

    public func fill(_ value: Float) { storage.update(repeating: value, count: count) }

    public func copy() -> Tensor {
        let out = Tensor(shape: shape)
        out.storage.update(from: storage, count: count)
        return out
    }

    /// The same values under another shape of equal size.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        let out = Tensor(shape: newShape)
        out.storage.update(from: storage, count: count)
        return out
    }

    public func maxAbs() -> Float {
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(storage[i])) }
        return m
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape)" }
}
