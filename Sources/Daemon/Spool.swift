import Foundation
import SystemIO

/// The spool's folders and the file-level operations on them. Paths inside the spool
/// are handled as paths relative to inbox/ ("ID001/x.png"), mirrored in every folder.
public struct Spool: Sendable {
    public let inbox: String
    public let work: String
    public let outbox: String
    public let quarantine: String
    public let done: String

    public init(config: DaemonConfig) {
        inbox = config.inboxDir
        work = config.workDir
        outbox = config.outboxDir
        quarantine = config.quarantineDir
        done = config.doneDir
    }

    public func create() throws {
        for dir in [inbox, work, outbox, quarantine, done] { try AtomicFile.makeDirectories(dir) }
    }

    /// Names the daemon never takes: dotfiles, `*.part`, `*.tmp`.
    public static func isEligible(name: String) -> Bool {
        !(name.hasPrefix(".") || name.hasSuffix(".part") || name.hasSuffix(".tmp") || name.isEmpty)
    }

    /// True when every component of a relative path is eligible (no hidden folders).
    public static func isEligible(relativePath: String) -> Bool {
        relativePath.split(separator: "/").allSatisfy { isEligible(name: String($0)) }
    }

    /// The output base for an input: outbox/<dir>/<stem>.
    public func outputBase(for relative: String) -> String {
        let dir = (relative as NSString).deletingLastPathComponent
        let name = (relative as NSString).lastPathComponent
        let stem = (name as NSString).deletingPathExtension
        return dir.isEmpty ? "\(outbox)/\(stem.isEmpty ? name : stem)" : "\(outbox)/\(dir)/\(stem.isEmpty ? name : stem)"
    }

    public func outputPaths(for relative: String) -> (csv: String, overlay: String, sidecar: String) {
        let base = outputBase(for: relative)
        return (base + ".csv", base + ".overlay.png", base + ".json")
    }

    /// Walks a folder below `root` and returns the relative paths of regular, eligible
    /// files, calling `directory` for each folder (its relative path, "" for root) first.
    public static func walk(root: String, relative: String = "", directory: (String) -> Void) -> [String] {
        var files = [String]()
        var stack = [relative]
        while let rel = stack.popLast() {
            directory(rel)
            let path = rel.isEmpty ? root : "\(root)/\(rel)"
            guard let dir = opendir(path) else { continue }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                if name == "." || name == ".." || !isEligible(name: name) { continue }
                let child = rel.isEmpty ? name : "\(rel)/\(name)"
                var info = stat()
                guard lstat("\(root)/\(child)", &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR: stack.append(child)
                case S_IFREG: files.append(child)
                default: break
                }
            }
            closedir(dir)
        }
        return files
    }

    /// Moves `from` to `to`, creating `to`'s folders; the rename is made durable.
    public static func move(_ from: String, to: String) throws {
        let dir = (to as NSString).deletingLastPathComponent
        if rename(from, to) != 0 {
            let code = errno
            guard code == ENOENT, access(from, F_OK) == 0 else { throw FileError(path: from, operation: "rename to \(to)", code: code) }
            try AtomicFile.makeDirectories(dir)
            guard rename(from, to) == 0 else { throw FileError(path: from, operation: "rename to \(to)", code: errno) }
        }
        try AtomicFile.syncDirectory(dir)
        try AtomicFile.syncDirectory((from as NSString).deletingLastPathComponent)
    }

    /// Removes temporary files a crash left behind in the daemon's own output folders
    /// (AtomicFile's `.name.pid.random.tmp`). Returns how many were removed.
    @discardableResult
    public func removeStaleTemporaries() -> Int {
        var removed = 0
        for root in [outbox, quarantine, done] {
            var stack = [root]
            while let path = stack.popLast() {
                guard let dir = opendir(path) else { continue }
                while let entry = readdir(dir) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                    }
                    if name == "." || name == ".." { continue }
                    let child = "\(path)/\(name)"
                    var info = stat()
                    guard lstat(child, &info) == 0 else { continue }
                    if info.st_mode & S_IFMT == S_IFDIR {
                        stack.append(child)
                    } else if name.hasPrefix("."), name.hasSuffix(".tmp"), unlink(child) == 0 {
                        removed += 1
                    }
                }
                closedir(dir)
            }
        }
        return removed
    }

    /// Deletes originals in done/ that arrived there (ctime: the rename) more than `days` days ago. Returns how many were removed.
    @discardableResult
    public func expireDone(olderThanDays days: Int, now: Date = Date()) -> Int {
        guard days > 0 else { return 0 }
        let cutoff = now.timeIntervalSince1970 - Double(days) * 86400
        var removed = 0
        for rel in Spool.walk(root: done, directory: { _ in }) {
            var info = stat()
            let path = "\(done)/\(rel)"
            guard stat(path, &info) == 0 else { continue }
            if Double(info.st_ctim.tv_sec) < cutoff, unlink(path) == 0 { removed += 1 }
        }
        return removed
    }
}

/// Size and modification time of a file, for the settle check.
public struct FileSnapshot: Equatable, Sendable {
    public let size: Int64
    public let mtimeNs: Int64

    public static func of(_ path: String) -> FileSnapshot? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return FileSnapshot(size: Int64(info.st_size), mtimeNs: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }
}

/// Seconds on CLOCK_MONOTONIC.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
