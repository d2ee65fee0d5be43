import CSQLite
import Foundation

public struct LedgerError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

/// A job attempt's state in the ledger. One row per attempt at one input.
public enum JobState: String, Sendable, Codable, CaseIterable {
    case claimed, processing, succeeded, quarantined, failed, interrupted, returned
    public var isTerminal: Bool { self == .succeeded || self == .quarantined }
}

/// Per-stage timings of one job, milliseconds.
public struct JobTimings: Sendable, Codable, Equatable {
    public var queueMs = 0.0
    public var readMs = 0.0
    public var processMs = 0.0
    public var writeMs = 0.0
    public var totalMs = 0.0
    public init() {}
}

/// A terminal row whose input may still sit in work/.
public struct PendingFinalize: Sendable {
    public let id: Int64
    public let state: JobState
}

/// Counts over a period, for status and stats.
public struct OutcomeCounts: Sendable, Codable, Equatable {
    public var processed = 0
    public var failed = 0
    public var quarantined = 0
    public init() {}
}

public struct StatsGroup: Sendable, Codable {
    public var key: String
    public var counts: OutcomeCounts
    public var latencyMs: LatencySummary
    /// Jobs per hour between the group's first and last finish (processed only).
    public var throughputPerHour: Double
    /// Mean pixel count per class over the group's processed jobs (29 entries, or empty).
    public var meanClassAreas: [Double]
}

public struct LatencySummary: Sendable, Codable, Equatable {
    public var count = 0
    public var p50 = 0.0
    public var p95 = 0.0
    public var p99 = 0.0
    public var max = 0.0
    public init() {}

    public init(samples: [Double]) {
        let sorted = samples.sorted()
        count = sorted.count
        guard !sorted.isEmpty else { return }
        func pick(_ q: Double) -> Double {
            let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
            return sorted[Swift.max(0, Swift.min(sorted.count - 1, rank))]
        }
        p50 = pick(0.50)
        p95 = pick(0.95)
        p99 = pick(0.99)
        max = sorted.last!
    }
}

/// The job ledger: SQLite in WAL mode through the C API. Every attempt at every
/// input is a row (input path, sha256, state, times, release, outcome, error);
/// every state change is also an event row. WAL with synchronous=NORMAL survives
/// a killed process without losing a committed transaction; a power loss may lose
/// the last transactions but never corrupts the file, and the spool's own state
/// (work/ is re-processed) makes a lost row harmless.
public final class Ledger: @unchecked Sendable {
    public let path: String
    private var db: OpaquePointer?
    private let lock = NSLock()

    public init(path: String, readOnly: Bool = false) throws {
        self.path = path
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(path, &handle, flags | SQLITE_OPEN_FULLMUTEX, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(handle)
            throw LedgerError(path: path, message: "open: \(message)")
        }
        db = handle
        sqlite3_busy_timeout(handle, 5000)
        if !readOnly {
            try execute("PRAGMA journal_mode=WAL")
            try execute("PRAGMA synchronous=NORMAL")
            try migrate()
        }
    }

    deinit { sqlite3_close_v2(db) }

    private func migrate() throws {
        try execute("""
        CREATE TABLE IF NOT EXISTS jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            input TEXT NOT NULL,
            sha256 TEXT,
            size INTEGER,
            state TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1,
            release TEXT,
            error TEXT,
            claimed_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            queue_ms REAL, read_ms REAL, process_ms REAL, write_ms REAL, total_ms REAL,
            class_areas TEXT,
            finalized INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS jobs_input ON jobs(input, sha256);
        CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished_at);
        CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
        CREATE TABLE IF NOT EXISTS events (
            job_id INTEGER NOT NULL,
            at REAL NOT NULL,
            state TEXT NOT NULL,
            detail TEXT
        );
        CREATE INDEX IF NOT EXISTS events_job ON events(job_id);
        CREATE TABLE IF NOT EXISTS daemon (
            key TEXT PRIMARY KEY,
            value TEXT
        );
        """)
    }

    // MARK: low level

    private func fail(_ what: String) -> LedgerError {
        LedgerError(path: path, message: "\(what): \(String(cString: sqlite3_errmsg(db)))")
    }

    public func execute(_ sql: String) throws {
        lock.lock(); defer { lock.unlock() }
        try executeLocked(sql)
    }

    private func executeLocked(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(db, sql, nil, nil, &message) != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? "error"
            sqlite3_free(message)
            throw LedgerError(path: path, message: "\(sql.prefix(40))…: \(text)")
        }
    }

    enum Value {
        case int(Int64), real(Double), text(String), null
    }

    private func prepare(_ sql: String, _ values: [Value]) throws -> OpaquePointer {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else { throw fail("prepare") }
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            switch value {
            case .int(let v): sqlite3_bind_int64(statement, index, v)
            case .real(let v): sqlite3_bind_double(statement, index, v)
            case .text(let v): sqlite3_bind_text(statement, index, v, -1, csqlite_transient())
            case .null: sqlite3_bind_null(statement, index)
            }
        }
        return statement
    }

    private func runLocked(_ sql: String, _ values: [Value]) throws {
        let statement = try prepare(sql, values)
        defer { sqlite3_finalize(statement) }
        let rc = sqlite3_step(statement)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw fail("step") }
    }

    private func queryLocked(_ sql: String, _ values: [Value], row: (OpaquePointer) -> Void) throws {
        let statement = try prepare(sql, values)
        defer { sqlite3_finalize(statement) }
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw fail("step") }
            row(statement)
        }
    }

    private func transaction<T>(_ body: () throws -> T) throws -> T {
        lock.lock(); defer { lock.unlock() }
        try executeLocked("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try executeLocked("COMMIT")
            return result
        } catch {
            try? executeLocked("ROLLBACK")
            throw error
        }
    }

    private static func text(_ s: OpaquePointer, _ column: Int32) -> String? {
        guard let p = sqlite3_column_text(s, column) else { return nil }
        return String(cString: p)
    }

    private static func real(_ s: OpaquePointer, _ column: Int32) -> Double? {
        sqlite3_column_type(s, column) == SQLITE_NULL ? nil : sqlite3_column_double(s, column)
    }

    // MARK: jobs

    /// Records claims of several inputs in one transaction; returns their row ids in order.
    public func recordClaims(_ inputs: [String], at time: Double) throws -> [Int64] {
        try transaction {
            var ids = [Int64]()
            for input in inputs {
                try runLocked("INSERT INTO jobs(input, state, claimed_at) VALUES (?, 'claimed', ?)", [.text(input), .real(time)])
                let id = sqlite3_last_insert_rowid(db)
                try runLocked("INSERT INTO events(job_id, at, state) VALUES (?, ?, 'claimed')", [.int(id), .real(time)])
                ids.append(id)
            }
            return ids
        }
    }

    /// The attempt number for an input with this content: 1 + earlier unfinished
    /// attempts (interrupted or failed for a non-transient reason) since the last
    /// finished one.
    public func attemptsBefore(input: String, sha256: String) throws -> Int {
        lock.lock(); defer { lock.unlock() }
        var count = 0
        try queryLocked("""
            SELECT COUNT(*) FROM jobs WHERE input = ? AND sha256 = ? AND state IN ('interrupted', 'failed')
              AND (error IS NULL OR error NOT LIKE 'transient:%')
              AND id > COALESCE((SELECT MAX(id) FROM jobs WHERE input = ? AND sha256 = ? AND finalized = 1), 0)
            """, [.text(input), .text(sha256), .text(input), .text(sha256)]) { count = Int(sqlite3_column_int64($0, 0)) }
        return count
    }

    /// A terminal, unfinalized row for this input and content: its outputs (or quarantine
    /// reason) are durable, only the input's move out of work/ did not complete.
    public func pendingFinalize(input: String, sha256: String) throws -> PendingFinalize? {
        lock.lock(); defer { lock.unlock() }
        var found: PendingFinalize?
        try queryLocked("""
            SELECT id, state FROM jobs WHERE input = ? AND sha256 = ? AND finalized = 0
              AND state IN ('succeeded', 'quarantined') ORDER BY id DESC LIMIT 1
            """, [.text(input), .text(sha256)]) { s in
            found = PendingFinalize(id: sqlite3_column_int64(s, 0), state: JobState(rawValue: Ledger.text(s, 1) ?? "") ?? .succeeded)
        }
        return found
    }

    public func recordStart(id: Int64, sha256: String, size: Int, attempt: Int, release: String, at time: Double) throws {
        try transaction {
            try runLocked("UPDATE jobs SET state = 'processing', sha256 = ?, size = ?, attempt = ?, release = ?, started_at = ? WHERE id = ?",
                          [.text(sha256), .int(Int64(size)), .int(Int64(attempt)), .text(release), .real(time), .int(id)])
            try runLocked("INSERT INTO events(job_id, at, state, detail) VALUES (?, ?, 'processing', ?)", [.int(id), .real(time), .text(release)])
        }
    }

    public func recordOutcome(id: Int64, state: JobState, error: String?, timings: JobTimings, classAreas: [Int]?,
                              finalized: Bool, at time: Double) throws {
        let areas = classAreas.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }
        try transaction {
            try runLocked("""
                UPDATE jobs SET state = ?, error = ?, finished_at = ?, queue_ms = ?, read_ms = ?, process_ms = ?, write_ms = ?,
                  total_ms = ?, class_areas = ?, finalized = ? WHERE id = ?
                """, [.text(state.rawValue), error.map { .text($0) } ?? .null, .real(time), .real(timings.queueMs), .real(timings.readMs),
                      .real(timings.processMs), .real(timings.writeMs), .real(timings.totalMs), areas.map { .text($0) } ?? .null,
                      .int(finalized ? 1 : 0), .int(id)])
            try runLocked("INSERT INTO events(job_id, at, state, detail) VALUES (?, ?, ?, ?)",
                          [.int(id), .real(time), .text(state.rawValue), error.map { .text($0) } ?? .null])
        }
    }

    public func markFinalized(id: Int64, at time: Double) throws {
        try transaction {
            try runLocked("UPDATE jobs SET finalized = 1 WHERE id = ?", [.int(id)])
            try runLocked("INSERT INTO events(job_id, at, state) VALUES (?, ?, 'finalized')", [.int(id), .real(time)])
        }
    }

    /// At start: attempts a crash left open become `interrupted`; terminal rows whose
    /// input is no longer in work/ are finalized. Returns how many rows were interrupted.
    @discardableResult
    public func reconcile(at time: Double, inputStillInWork: (String) -> Bool) throws -> Int {
        var open = [Int64]()
        var unfinalized = [(Int64, String)]()
        lock.lock()
        do {
            try queryLocked("SELECT id FROM jobs WHERE state IN ('claimed', 'processing')", []) { open.append(sqlite3_column_int64($0, 0)) }
            try queryLocked("SELECT id, input FROM jobs WHERE finalized = 0 AND state IN ('succeeded', 'quarantined')", []) {
                unfinalized.append((sqlite3_column_int64($0, 0), Ledger.text($0, 1) ?? ""))
            }
        } catch {
            lock.unlock()
            throw error
        }
        lock.unlock()
        let done = unfinalized.filter { !inputStillInWork($0.1) }.map(\.0)
        try transaction {
            for id in open {
                try runLocked("UPDATE jobs SET state = 'interrupted', finished_at = ? WHERE id = ?", [.real(time), .int(id)])
                try runLocked("INSERT INTO events(job_id, at, state, detail) VALUES (?, ?, 'interrupted', 'daemon stopped during the job')",
                              [.int(id), .real(time)])
            }
            for id in done {
                try runLocked("UPDATE jobs SET finalized = 1 WHERE id = ?", [.int(id)])
            }
        }
        return open.count
    }

    // MARK: daemon key-value (for status when the daemon is down)

    public func setDaemonValue(_ key: String, _ value: String) throws {
        try transaction {
            try runLocked("INSERT INTO daemon(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [.text(key), .text(value)])
        }
    }

    public func daemonValues() throws -> [String: String] {
        lock.lock(); defer { lock.unlock() }
        var values = [String: String]()
        try queryLocked("SELECT key, value FROM daemon", []) { values[Ledger.text($0, 0) ?? ""] = Ledger.text($0, 1) ?? "" }
        return values
    }

    // MARK: reports

    public func counts(since: Double?) throws -> OutcomeCounts {
        lock.lock(); defer { lock.unlock() }
        var counts = OutcomeCounts()
        try queryLocked("SELECT state, COUNT(*) FROM jobs WHERE finished_at >= ? GROUP BY state", [.real(since ?? -1)]) { s in
            let n = Int(sqlite3_column_int64(s, 1))
            switch Ledger.text(s, 0) {
            case "succeeded": counts.processed = n
            case "failed": counts.failed = n
            case "quarantined": counts.quarantined = n
            default: break
            }
        }
        return counts
    }

    /// Latency of the last `limit` processed jobs.
    public func latency(limit: Int = 10_000) throws -> LatencySummary {
        lock.lock(); defer { lock.unlock() }
        var samples = [Double]()
        try queryLocked("SELECT total_ms FROM jobs WHERE state = 'succeeded' ORDER BY id DESC LIMIT ?", [.int(Int64(limit))]) {
            samples.append(sqlite3_column_double($0, 0))
        }
        return LatencySummary(samples: samples)
    }

    public struct ErrorRecord: Sendable, Codable {
        public let input: String
        public let error: String
        public let at: Double
    }

    public func lastError() throws -> ErrorRecord? {
        lock.lock(); defer { lock.unlock() }
        var record: ErrorRecord?
        try queryLocked("SELECT input, error, finished_at FROM jobs WHERE error IS NOT NULL ORDER BY id DESC LIMIT 1", []) { s in
            record = ErrorRecord(input: Ledger.text(s, 0) ?? "", error: Ledger.text(s, 1) ?? "", at: Ledger.real(s, 2) ?? 0)
        }
        return record
    }

    public enum Grouping: String, Sendable, CaseIterable { case day, release }

    /// Outcomes, latency, throughput and mean class areas grouped by local day or by release.
    public func stats(since: Double?, by grouping: Grouping) throws -> [StatsGroup] {
        struct Acc {
            var counts = OutcomeCounts()
            var latencies = [Double]()
            var first = Double.infinity
            var last = -Double.infinity
            var areaSums = [Double]()
            var areaCount = 0
        }
        let keyExpression = grouping == .day ? "date(finished_at, 'unixepoch', 'localtime')" : "COALESCE(release, '-')"
        var groups = [String: Acc]()
        lock.lock(); defer { lock.unlock() }
        try queryLocked("""
            SELECT \(keyExpression), state, total_ms, finished_at, class_areas FROM jobs
            WHERE finished_at >= ? AND state IN ('succeeded', 'failed', 'quarantined')
            """, [.real(since ?? -1)]) { s in
            let key = Ledger.text(s, 0) ?? "-"
            var acc = groups[key] ?? Acc()
            switch Ledger.text(s, 1) {
            case "succeeded":
                acc.counts.processed += 1
                acc.latencies.append(sqlite3_column_double(s, 2))
                let finished = sqlite3_column_double(s, 3)
                acc.first = min(acc.first, finished)
                acc.last = max(acc.last, finished)
                if let text = Ledger.text(s, 4), let data = text.data(using: .utf8),
                   let areas = try? JSONDecoder().decode([Int].self, from: data) {
                    if acc.areaSums.isEmpty { acc.areaSums = [Double](repeating: 0, count: areas.count) }
                    if areas.count == acc.areaSums.count {
                        for (i, a) in areas.enumerated() { acc.areaSums[i] += Double(a) }
                        acc.areaCount += 1
                    }
                }
            case "failed": acc.counts.failed += 1
            case "quarantined": acc.counts.quarantined += 1
            default: break
            }
            groups[key] = acc
        }
        return groups.keys.sorted().map { key in
            let acc = groups[key]!
            let span = acc.last - acc.first
            let throughput = acc.counts.processed < 2 || span <= 0 ? 0 : Double(acc.counts.processed - 1) / span * 3600
            return StatsGroup(key: key, counts: acc.counts, latencyMs: LatencySummary(samples: acc.latencies),
                              throughputPerHour: throughput,
                              meanClassAreas: acc.areaCount == 0 ? [] : acc.areaSums.map { $0 / Double(acc.areaCount) })
        }
    }

    /// Rows per state for one input path (tests and diagnostics).
    public func states(ofInput input: String) throws -> [JobState] {
        lock.lock(); defer { lock.unlock() }
        var states = [JobState]()
        try queryLocked("SELECT state FROM jobs WHERE input = ? ORDER BY id", [.text(input)]) {
            if let s = JobState(rawValue: Ledger.text($0, 0) ?? "") { states.append(s) }
        }
        return states
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    public func integrityCheck() throws -> String {
        lock.lock(); defer { lock.unlock() }
        var result = [String]()
        try queryLocked("PRAGMA integrity_check", []) { result.append(Ledger.text($0, 0) ?? "") }
        return result.joined(separator: "; ")
    }
}
