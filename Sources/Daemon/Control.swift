import CSystemd
import Foundation

/// What `status` reports, from the running daemon or, when it is down, from the ledger.
public struct StatusReport: Codable, Sendable {
    public struct Release: Codable, Sendable {
        public var name: String
        public var members: [String]
        public var engine: String
    }
    public struct Queue: Codable, Sendable {
        /// Files noticed in inbox/, not yet claimed.
        public var waiting: Int
        /// Claimed into work/, not yet started.
        public var queued: Int
        /// Being processed now.
        public var active: Int
        public var depth: Int
    }
    public struct Reload: Codable, Sendable {
        public var at: Double
        public var release: String
        public var ok: Bool
        public var error: String?
    }

    /// "up" or "down".
    public var daemon: String
    /// running, degraded, paused, stopping or stopped.
    public var state: String
    public var pid: Int32?
    public var startedAt: Double?
    public var uptimeSeconds: Double?
    public var release: Release?
    public var queue: Queue?
    public var today: OutcomeCounts
    public var total: OutcomeCounts
    public var latencyMs: LatencySummary
    public var lastError: Ledger.ErrorRecord?
    /// Why the daemon is degraded, while it is.
    public var degradedReason: String?
    public var lastReload: Reload?
    public var rescans: Int?
    public var overflows: Int?
    /// The newest retraining run (`bonectl retrain`), running or finished; absent when none ran.
    public var lastRetrain: RetrainRecord? = nil

    enum CodingKeys: String, CodingKey {
        case daemon, state, pid, release, queue, today, total, rescans, overflows
        case startedAt = "started_at", uptimeSeconds = "uptime_seconds", latencyMs = "latency_ms"
        case lastError = "last_error", degradedReason = "degraded_reason", lastReload = "last_reload"
        case lastRetrain = "last_retrain"
    }

    /// The status a stopped daemon left: counts from the ledger, the active release from the symlink.
    public static func fromLedger(config: DaemonConfig) throws -> StatusReport {
        guard FileManager.default.fileExists(atPath: config.ledgerPath) else {
            throw LedgerError(path: config.ledgerPath, message: "no ledger (has bonesegd ever run with this state dir?)")
        }
        let ledger = try Ledger(path: config.ledgerPath, readOnly: true)
        let values = (try? ledger.daemonValues()) ?? [:]
        let name = config.releaseName.isEmpty ? ReleaseLinks(stateDir: config.stateDir).active() : config.releaseName
        return StatusReport(
            daemon: "down", state: "stopped", pid: nil,
            startedAt: values["started_at"].flatMap(Double.init), uptimeSeconds: nil,
            release: name.map { Release(name: $0, members: [], engine: config.engine.rawValue) },
            queue: nil,
            today: try ledger.counts(since: StatusReport.startOfToday()),
            total: try ledger.counts(since: nil),
            latencyMs: try ledger.latency(),
            lastError: try ledger.lastError(),
            degradedReason: nil, lastReload: nil, rescans: nil, overflows: nil,
            lastRetrain: try ledger.latestRetrainForStatus())
    }

    public static func startOfToday(now: Date = Date()) -> Double {
        Calendar.current.startOfDay(for: now).timeIntervalSince1970
    }
}

/// One request on the control socket: a JSON object on one line.
public struct ControlRequest: Codable, Sendable {
    public var command: String
    /// For `stats`: only jobs finished at or after this time (seconds since 1970).
    public var since: Double?
    /// For `stats`: "day" or "release".
    public var by: String?
    /// For `stats`: how many retraining runs to return (newest first); default 20.
    public var retrains: Int?
    public init(command: String, since: Double? = nil, by: String? = nil, retrains: Int? = nil) {
        self.command = command
        self.since = since
        self.by = by
        self.retrains = retrains
    }
}

/// One reply: `ok`, a message, and for `status` the report.
public struct ControlReply: Codable, Sendable {
    public var ok: Bool
    public var message: String
    public var status: StatusReport?
    public var stats: [StatsGroup]?
    /// For `stats`: retraining runs, newest first (since the request's `since`, by start time).
    public var retrains: [RetrainRecord]?
    public init(ok: Bool, message: String, status: StatusReport? = nil, stats: [StatsGroup]? = nil, retrains: [RetrainRecord]? = nil) {
        self.ok = ok
        self.message = message
        self.status = status
        self.stats = stats
        self.retrains = retrains
    }
}

public struct ControlError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The daemon's side of the control socket: AF_UNIX stream, one JSON line in, one out.
/// The socket is made with the configured mode and group; each peer's credentials
/// (SO_PEERCRED) must be root, the daemon's own user, or a member of the socket's group.
public final class ControlServer: @unchecked Sendable {
    public let path: String
    private let listenFd: Int32
    private let wakeFd: Int32
    private let socketGroup: gid_t
    private let handler: @Sendable (ControlRequest) -> ControlReply
    private let log: DaemonLog
    private let lock = NSLock()
    private var stopped = false
    private var running = false
    private let done = DispatchSemaphore(value: 0)

    public init(path: String, mode: UInt32, group: String, log: DaemonLog, handler: @escaping @Sendable (ControlRequest) -> ControlReply) throws {
        self.path = path
        self.handler = handler
        self.log = log
        let dir = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlError("\(path): socket failed: \(String(cString: strerror(errno)))") }
        // A socket file left by a crash is replaced; a live daemon on it is refused.
        if ControlServer.isLive(path) {
            close(fd)
            throw ControlError("\(path): another bonesegd answers on this control socket")
        }
        unlink(path)
        var address = ControlServer.address(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw ControlError("\(path): bind failed: \(String(cString: strerror(code)))")
        }
        var gid = getegid()
        if !group.isEmpty {
            if let entry = getgrnam(group) {
                gid = entry.pointee.gr_gid
            } else {
                log.log(.warning, "control socket \(path): group \(group) does not exist; keeping group \(gid)")
            }
        }
        socketGroup = gid
        _ = chown(path, uid_t.max, gid)
        guard chmod(path, mode_t(mode)) == 0 else {
            let code = errno
            close(fd)
            throw ControlError("\(path): chmod failed: \(String(cString: strerror(code)))")
        }
        guard listen(fd, 16) == 0 else {
            let code = errno
            close(fd)
            throw ControlError("\(path): listen failed: \(String(cString: strerror(code)))")
        }
        listenFd = fd
        wakeFd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
    }

    deinit {
        close(listenFd)
        close(wakeFd)
    }

    static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    static func isLive(_ path: String) -> Bool {
        guard let fd = try? ControlClient.connect(path: path, timeoutSeconds: 1) else { return false }
        close(fd)
        return true
    }

    public func start() {
        lock.lock()
        running = true
        lock.unlock()
        let thread = Thread { [self] in
            self.serve()
            self.done.signal()
        }
        thread.name = "bonesegd-control"
        thread.start()
    }

    public func stop() {
        lock.lock()
        let wasRunning = running && !stopped
        stopped = true
        lock.unlock()
        var one: UInt64 = 1
        _ = write(wakeFd, &one, 8)
        if wasRunning { done.wait() }
        unlink(path)
    }

    func peerAllowed(_ fd: Int32) -> (Bool, String) {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        guard csystemd_peer_credentials(fd, &pid, &uid, &gid) == 0 else { return (false, "no peer credentials") }
        let who = "pid \(pid) uid \(uid) gid \(gid)"
        if uid == 0 || uid == geteuid() || gid == socketGroup { return (true, who) }
        // The peer's supplementary groups, from the socket (no /proc needed, so it works under ProtectProc=).
        var groups = [UInt32](repeating: 0, count: 256)
        let count = csystemd_peer_groups(fd, &groups, Int32(groups.count))
        if count > 0, groups.prefix(Int(count)).contains(socketGroup) { return (true, who) }
        return (false, who)
    }

    private func serve() {
        var fds = [pollfd(fd: listenFd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFd, events: Int16(POLLIN), revents: 0)]
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            let rc = poll(&fds, 2, 1000)
            lock.lock()
            let stop = stopped
            lock.unlock()
            if stop || fds[1].revents != 0 { return }
            if rc <= 0 || fds[0].revents == 0 { continue }
            let client = accept(listenFd, nil, nil)
            if client < 0 { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            handle(client)
            close(client)
        }
    }

    private func handle(_ fd: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let (allowed, who) = peerAllowed(fd)
        // The request is read before any reply, so a refused client sees the answer, not EPIPE.
        let line = ControlClient.readLine(fd, limit: 65536)
        let reply: ControlReply
        if !allowed {
            log.log(.warning, "control socket: refused \(who): not root, not the daemon's user, not in the socket's group")
            reply = ControlReply(ok: false, message: "permission denied: not in the control socket's group")
        } else if let line, let request = try? JSONDecoder().decode(ControlRequest.self, from: Data(line)) {
            reply = handler(request)
        } else {
            reply = ControlReply(ok: false, message: "malformed request: expected one JSON object line such as {\"command\":\"status\"}")
        }
        guard var bytes = try? JSONEncoder().encode(reply) else { return }
        bytes.append(0x0A)
        _ = ControlClient.writeAll(fd, [UInt8](bytes))
    }
}

/// bonectl's side of the control socket.
public enum ControlClient {
    public static func connect(path: String, timeoutSeconds: Int = 10) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlError("\(path): socket failed: \(String(cString: strerror(errno)))") }
        var address = ControlServer.address(path)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let code = errno
            close(fd)
            throw ControlError("\(path): cannot connect: \(String(cString: strerror(code)))")
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends one request and waits for the reply.
    public static func send(_ request: ControlRequest, path: String, timeoutSeconds: Int = 120) throws -> ControlReply {
        let fd = try connect(path: path, timeoutSeconds: timeoutSeconds)
        defer { close(fd) }
        var bytes = [UInt8](try JSONEncoder().encode(request))
        bytes.append(0x0A)
        guard writeAll(fd, bytes) else { throw ControlError("\(path): write failed: \(String(cString: strerror(errno)))") }
        guard let line = readLine(fd, limit: 16 << 20) else { throw ControlError("\(path): no reply from bonesegd") }
        do {
            return try JSONDecoder().decode(ControlReply.self, from: Data(line))
        } catch {
            throw ControlError("\(path): unreadable reply from bonesegd: \(error)")
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    static func readLine(_ fd: Int32, limit: Int) -> [UInt8]? {
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while out.count < limit {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if let newline = chunk[0..<n].firstIndex(of: 0x0A) {
                out.append(contentsOf: chunk[0..<newline])
                return out
            }
            out.append(contentsOf: chunk[0..<n])
        }
        return out.isEmpty ? nil : out
    }
}
