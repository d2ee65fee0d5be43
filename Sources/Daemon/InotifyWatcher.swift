import CSystemd
import Foundation

/// What the watcher reports.
public enum WatchEvent: Sendable {
    /// A file (relative to the root) was written and closed, moved in, or created.
    case file(String)
    /// The kernel dropped events: everything must be rescanned.
    case overflow
}

public struct WatchError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// inotify (through Glibc) on a folder tree: IN_CLOSE_WRITE and IN_MOVED_TO for
/// files; new subfolders are watched and scanned at once, so files made in a fresh
/// `mkdir -p` tree before its watch existed are still found; IN_Q_OVERFLOW is
/// reported for a full rescan. Runs its own thread.
public final class InotifyWatcher: @unchecked Sendable {
    public let root: String
    private let fd: Int32
    private let wakeFd: Int32
    private let lock = NSLock()
    private var directories: [Int32: String] = [:]
    private let sink: @Sendable (WatchEvent) -> Void
    private var thread: Thread?
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)

    static let directoryMask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

    public init(root: String, sink: @escaping @Sendable (WatchEvent) -> Void) throws {
        self.root = root
        self.sink = sink
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw WatchError(path: root, reason: "inotify_init1 failed: \(String(cString: strerror(errno)))") }
        wakeFd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeFd >= 0 else { throw WatchError(path: root, reason: "eventfd failed: \(String(cString: strerror(errno)))") }
        try watch(relative: "")
    }

    deinit {
        close(fd)
        close(wakeFd)
    }

    /// Adds a watch on one folder (relative to the root). Idempotent.
    func watch(relative: String) throws {
        let path = relative.isEmpty ? root : "\(root)/\(relative)"
        let wd = inotify_add_watch(fd, path, InotifyWatcher.directoryMask)
        if wd < 0 {
            let code = errno
            if relative.isEmpty || code != ENOENT {
                throw WatchError(path: path, reason: "inotify_add_watch failed: \(String(cString: strerror(code)))"
                                 + (code == ENOSPC ? " (raise fs.inotify.max_user_watches)" : ""))
            }
            return
        }
        lock.lock()
        directories[wd] = relative
        lock.unlock()
    }

    /// Watches a folder tree and returns its eligible files (relative to the root).
    public func watchTree(relative: String = "") -> [String] {
        Spool.walk(root: root, relative: relative) { dir in try? self.watch(relative: dir) }
    }

    public var watchedDirectoryCount: Int {
        lock.lock(); defer { lock.unlock() }
        return directories.count
    }

    public func start() {
        let thread = Thread { [self] in
            self.run()
            self.done.signal()
        }
        thread.name = "bonesegd-inotify"
        self.thread = thread
        thread.start()
    }

    public func stop() {
        lock.lock()
        let wasRunning = thread != nil && !stopped
        stopped = true
        lock.unlock()
        var one: UInt64 = 1
        _ = write(wakeFd, &one, 8)
        if wasRunning { done.wait() }
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFd, events: Int16(POLLIN), revents: 0)]
        while true {
            lock.lock()
            let stop = stopped
            lock.unlock()
            if stop { return }
            fds[0].revents = 0
            fds[1].revents = 0
            let rc = poll(&fds, 2, 1000)
            if rc < 0 && errno != EINTR { return }
            if fds[1].revents != 0 { return }
            if fds[0].revents == 0 { continue }
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                handle(buffer: buffer, count: n)
            }
        }
    }

    private func handle(buffer: [UInt8], count: Int) {
        var offset = 0
        let headerSize = MemoryLayout<inotify_event>.size
        while offset + headerSize <= count {
            let (wd, mask, length) = buffer.withUnsafeBytes { raw -> (Int32, UInt32, Int) in
                let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                return (event.wd, event.mask, Int(event.len))
            }
            var name = ""
            if length > 0 {
                let start = offset + headerSize
                let bytes = buffer[start..<(start + length)].prefix { $0 != 0 }
                name = String(decoding: bytes, as: UTF8.self)
            }
            offset += headerSize + length

            if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                sink(.overflow)
                continue
            }
            lock.lock()
            let dir = directories[wd]
            if mask & UInt32(IN_IGNORED) != 0 { directories[wd] = nil }
            lock.unlock()
            guard let dir, !name.isEmpty, Spool.isEligible(name: name) else { continue }
            let relative = dir.isEmpty ? name : "\(dir)/\(name)"
            if mask & UInt32(IN_ISDIR) != 0 {
                if mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 {
                    for file in watchTree(relative: relative) { sink(.file(file)) }
                }
            } else if mask & UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) != 0 {
                sink(.file(relative))
            }
        }
    }
}
