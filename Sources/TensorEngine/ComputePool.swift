import CBLAS
import Foundation

/// The engine's own worker threads. Every parallel op splits its work into
/// items and runs them here; OpenBLAS is kept to one thread per call so the two
/// never oversubscribe the cores, and nothing runs on Swift's cooperative pool.
public final class ComputePool: @unchecked Sendable {
    /// Sized from BONESEG_THREADS, else the number of online cores.
    public static let shared: ComputePool = {
        let env = ProcessInfo.processInfo.environment["BONESEG_THREADS"].flatMap { Int($0) }
        return ComputePool(threads: max(1, env ?? ProcessInfo.processInfo.activeProcessorCount))
    }()

    public let threadCount: Int
    private let condition = NSCondition()
    private let callerLock = NSLock()
    private var body: ((Int, Int) -> Void)?
    private var nextItem = 0
    private var itemCount = 0
    private var busyWorkers = 0
    private var generation = 0

    public init(threads: Int) {
        threadCount = threads
        // Each BLAS call runs on the calling thread; parallelism is ours.
        openblas_set_num_threads(1)
        for index in 1..<max(threads, 1) {
            // Workers hold the pool: pools are made once and live as long as the process.
            let thread = Thread { self.workerLoop(index: index) }
            thread.name = "bonesegd-compute-\(index)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Runs body(0..<count) across the pool and the calling thread; returns when all are done.
    public func parallelFor(_ count: Int, _ work: (Int) -> Void) {
        parallelFor(count) { item, _ in work(item) }
    }

    /// As parallelFor, also passing the worker's index in 0..<threadCount, so
    /// each worker can use its own scratch buffer.
    public func parallelFor(_ count: Int, _ work: (_ item: Int, _ worker: Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || threadCount == 1 {
            for i in 0..<count { work(i, 0) }
            return
        }
        callerLock.lock()
        defer { callerLock.unlock() }
        withoutActuallyEscaping(work) { escaping in
            condition.lock()
            body = escaping
            nextItem = 0
            itemCount = count
            busyWorkers = threadCount - 1
            generation &+= 1
            condition.broadcast()
            condition.unlock()
            drain(escaping, worker: 0)
            condition.lock()
            while busyWorkers > 0 { condition.wait() }
            body = nil
            condition.unlock()
        }
    }

    private func claim() -> Int? {
        condition.lock()
        defer { condition.unlock() }
        guard nextItem < itemCount else { return nil }
        nextItem += 1
        return nextItem - 1
    }

    private func drain(_ work: (Int, Int) -> Void, worker: Int) {
        while let item = claim() { work(item, worker) }
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            condition.lock()
            while generation == seen || body == nil { condition.wait() }
            seen = generation
            condition.unlock()
            runCurrentJob(worker: index)
            condition.lock()
            busyWorkers -= 1
            if busyWorkers == 0 { condition.broadcast() }
            condition.unlock()
        }
    }

    /// Takes its own reference to the job and drops it on return, before the
    /// caller is told the worker is done: the job closure must not outlive
    /// parallelFor (withoutActuallyEscaping checks that).
    private func runCurrentJob(worker: Int) {
        condition.lock()
        let work = body
        condition.unlock()
        if let work { drain(work, worker: worker) }
    }
}
