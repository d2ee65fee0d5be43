import CSystemd
import Foundation

/// Syslog priorities.
public enum LogPriority: Int, Sendable {
    case emerg = 0, alert, crit, err, warning, notice, info, debug
}

/// The daemon's log: the journal with structured fields when stderr is the journal
/// (JOURNAL_STREAM names stderr's device and inode) or when asked; otherwise plain
/// stderr lines with `<N>` priority prefixes, which journald and syslog also parse.
public final class DaemonLog: @unchecked Sendable {
    public let useJournal: Bool
    public let maxLevel: Int
    private let lock = NSLock()

    public init(target: LogTarget, maxLevel: Int, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.maxLevel = maxLevel
        switch target {
        case .journal: useJournal = true
        case .stderr: useJournal = false
        case .auto: useJournal = DaemonLog.stderrIsJournal(environment["JOURNAL_STREAM"])
        }
    }

    static func stderrIsJournal(_ value: String?) -> Bool {
        guard let value else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == dev && UInt64(info.st_ino) == ino
    }

    /// One message with optional structured fields (uppercase journal field names).
    public func log(_ priority: LogPriority, _ message: String, fields: [String: String] = [:]) {
        guard priority.rawValue <= maxLevel else { return }
        if useJournal {
            var entries = ["MESSAGE=\(message)", "PRIORITY=\(priority.rawValue)", "SYSLOG_IDENTIFIER=bonesegd"]
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) { entries.append("\(key)=\(value)") }
            let copies = entries.map { strdup($0)! }
            defer { copies.forEach { free($0) } }
            let iovecs = copies.map { iovec(iov_base: UnsafeMutableRawPointer($0), iov_len: strlen($0)) }
            let rc = iovecs.withUnsafeBufferPointer { csystemd_journal_sendv($0.baseAddress, Int32($0.count)) }
            if rc >= 0 { return }
        }
        let line = "<\(priority.rawValue)>\(message)\n"
        lock.lock()
        FileHandle.standardError.write(line.data(using: .utf8)!)
        lock.unlock()
    }
}
