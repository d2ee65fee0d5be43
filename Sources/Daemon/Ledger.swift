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
        CREATE TABLE IF NOT EXISTS retrains (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at REAL NOT NULL,
            finished_at REAL,
            updated_at REAL,
            data_dir TEXT NOT NULL,
            arguments TEXT NOT NULL,
            state TEXT NOT NULL,
            train_images INTEGER NOT NULL,
            validation_images INTEGER NOT NULL,
            skipped_files INTEGER NOT NULL,
            seeds INTEGER NOT NULL,
            epochs INTEGER NOT NULL DEFAULT 0,
            candidate_release TEXT,
            candidate_dice REAL,
            champion_release TEXT,
            champion_dice REAL,
            min_gain REAL,
            reason TEXT,
            pid INTEGER,
            pid_start TEXT,
            boot_id TEXT
        );
        CREATE INDEX IF NOT EXISTS retrains_state ON retrains(state);
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

    private static func int(_ s: OpaquePointer, _ column: Int32) -> Int64? {
        sqlite3_column_type(s, column) == SQLITE_NULL ? nil : sqlite3_column_int64(s, column)
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

    // MARK: retraining runs (written by `bonectl retrain`, a second process beside the daemon)

    private static let retrainColumns = """
        id, started_at, finished_at, updated_at, data_dir, arguments, state, train_images, validation_images, skipped_files,
        seeds, epochs, candidate_release, candidate_dice, champion_release, champion_dice, min_gain, reason, pid, pid_start, boot_id
        """

    private static func retrainRow(_ s: OpaquePointer) -> (RetrainRecord, RetrainOwner?) {
        func date(_ c: Int32) -> Date? { real(s, c).map { Date(timeIntervalSince1970: $0) } }
        let record = RetrainRecord(
            id: sqlite3_column_int64(s, 0), startedAt: date(1) ?? Date(timeIntervalSince1970: 0), finishedAt: date(2), updatedAt: date(3),
            dataDir: text(s, 4) ?? "", arguments: text(s, 5) ?? "",
            // A state this build does not know (a newer writer) shows as failed rather than vanishing.
            state: RetrainState(rawValue: text(s, 6) ?? "") ?? .failed,
            trainImages: Int(sqlite3_column_int64(s, 7)), validationImages: Int(sqlite3_column_int64(s, 8)),
            skippedFiles: Int(sqlite3_column_int64(s, 9)), seeds: Int(sqlite3_column_int64(s, 10)), epochs: Int(sqlite3_column_int64(s, 11)),
            candidateRelease: text(s, 12), candidateDice: real(s, 13), championRelease: text(s, 14), championDice: real(s, 15),
            minGain: real(s, 16), reason: text(s, 17), pid: int(s, 18).map { Int32(truncatingIfNeeded: $0) })
        let owner = record.pid.map { RetrainOwner(pid: $0, startTime: text(s, 19), bootID: text(s, 20)) }
        return (record, owner)
    }

    /// Whether the retrains table exists: a read-only handle on a ledger written by an
    /// older bonesegd must answer "no runs", not fail.
    private func hasRetrainsTableLocked() throws -> Bool {
        var found = false
        try queryLocked("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'retrains'", []) { _ in found = true }
        return found
    }

    /// Records the start of a retraining run (state `running`, owned by this process); returns its id.
    public func beginRetrain(dataDir: String, arguments: String, seeds: Int, trainImages: Int, validationImages: Int, skippedFiles: Int,
                             minGain: Double? = nil, owner: RetrainOwner = .current, at time: Date = Date()) throws -> Int64 {
        try transaction {
            try runLocked("""
                INSERT INTO retrains(started_at, updated_at, data_dir, arguments, state, train_images, validation_images, skipped_files,
                  seeds, epochs, min_gain, pid, pid_start, boot_id) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, 0, ?, ?, ?, ?)
                """, [.real(time.timeIntervalSince1970), .real(time.timeIntervalSince1970), .text(dataDir), .text(arguments),
                      .int(Int64(trainImages)), .int(Int64(validationImages)), .int(Int64(skippedFiles)), .int(Int64(seeds)),
                      minGain.map { .real($0) } ?? .null, .int(Int64(owner.pid)), owner.startTime.map { .text($0) } ?? .null,
                      owner.bootID.map { .text($0) } ?? .null])
            return sqlite3_last_insert_rowid(db)
        }
    }

    /// Epochs completed per seed so far (also the run's heartbeat: `updated_at`).
    public func updateRetrainProgress(id: Int64, epochs: Int, at time: Date = Date()) throws {
        try transaction {
            try runLocked("UPDATE retrains SET epochs = ?, updated_at = ? WHERE id = ?",
                          [.int(Int64(epochs)), .real(time.timeIntervalSince1970), .int(id)])
            guard sqlite3_changes(db) == 1 else { throw LedgerError(path: path, message: "no retraining run with id \(id)") }
        }
    }

    /// Records how a run ended: promoted, kept-champion, failed or interrupted, with the
    /// candidate's and champion's validation Dice and why.
    public func finishRetrain(id: Int64, state: RetrainState, candidateRelease: String?, candidateDice: Double?, championRelease: String?,
                              championDice: Double?, reason: String?, at time: Date = Date()) throws {
        guard state != .running else { throw LedgerError(path: path, message: "retraining run \(id): a finished run cannot be 'running'") }
        try transaction {
            try runLocked("""
                UPDATE retrains SET state = ?, finished_at = ?, updated_at = ?, candidate_release = ?, candidate_dice = ?,
                  champion_release = ?, champion_dice = ?, reason = ? WHERE id = ?
                """, [.text(state.rawValue), .real(time.timeIntervalSince1970), .real(time.timeIntervalSince1970),
                      candidateRelease.map { .text($0) } ?? .null, candidateDice.map { .real($0) } ?? .null,
                      championRelease.map { .text($0) } ?? .null, championDice.map { .real($0) } ?? .null,
                      reason.map { .text($0) } ?? .null, .int(id)])
            guard sqlite3_changes(db) == 1 else { throw LedgerError(path: path, message: "no retraining run with id \(id)") }
        }
    }

    /// Runs, newest first; with `since`, only runs started at or after it. A row still
    /// `running` whose process is gone (kill -9, power loss) is returned as interrupted, though
    /// the row itself is only rewritten by the next retrain (`markStaleRetrainsInterrupted`):
    /// readers such as `bonectl status` may hold a read-only handle.
    public func retrains(limit: Int = 20, since: Date? = nil) throws -> [RetrainRecord] {
        lock.lock(); defer { lock.unlock() }
        guard try hasRetrainsTableLocked() else { return [] }
        var records = [RetrainRecord]()
        try queryLocked("SELECT \(Ledger.retrainColumns) FROM retrains WHERE started_at >= ? ORDER BY id DESC LIMIT ?",
                        [.real(since?.timeIntervalSince1970 ?? -1), .int(Int64(max(0, limit)))]) { s in
            var (record, owner) = Ledger.retrainRow(s)
            if record.state == .running, owner?.isGone() ?? true {
                record.state = .interrupted
                record.reason = RetrainOwner.goneReason(owner)
            }
            records.append(record)
        }
        return records
    }

    /// The newest run, as `bonectl status` shows it.
    public func latestRetrainForStatus() throws -> RetrainRecord? {
        try retrains(limit: 1).first
    }

    /// A run whose process is still alive, if any (a second retrain can refuse to start beside it).
    public func liveRetrain() throws -> RetrainRecord? {
        lock.lock(); defer { lock.unlock() }
        guard try hasRetrainsTableLocked() else { return nil }
        var live: RetrainRecord?
        try queryLocked("SELECT \(Ledger.retrainColumns) FROM retrains WHERE state = 'running' ORDER BY id DESC", []) { s in
            let (record, owner) = Ledger.retrainRow(s)
            if live == nil, let owner, !owner.isGone() { live = record }
        }
        return live
    }

    /// Rows left "running" by a process that died (kill -9): mark them interrupted. Called at
    /// the start of a new retrain. A row whose process still runs (a concurrent retrain) is left
    /// alone: the owner is recognised by pid, the process's start time and the boot id.
    @discardableResult
    public func markStaleRetrainsInterrupted(at time: Date = Date()) throws -> Int {
        try transaction {
            var stale = [(Int64, String)]()
            try queryLocked("SELECT \(Ledger.retrainColumns) FROM retrains WHERE state = 'running'", []) { s in
                let (record, owner) = Ledger.retrainRow(s)
                if owner?.isGone() ?? true { stale.append((record.id, RetrainOwner.goneReason(owner))) }
            }
            for (id, reason) in stale {
                try runLocked("UPDATE retrains SET state = 'interrupted', finished_at = ?, reason = ? WHERE id = ?",
                              [.real(time.timeIntervalSince1970), .text(reason), .int(id)])
            }
            return stale.count
        }
    }
}

public enum RetrainState: String, Sendable, Codable, CaseIterable {
    case running, promoted, keptChampion = "kept-champion", failed, interrupted
}

/// One `bonectl retrain` run as the ledger keeps it.
public struct RetrainRecord: Sendable, Equatable, Codable {
    public var id: Int64
    public var startedAt: Date
    public var finishedAt: Date?
    /// Last write by the run (start, each epoch, finish): a heartbeat.
    public var updatedAt: Date?
    public var dataDir: String
    /// The command line as typed.
    public var arguments: String
    public var state: RetrainState
    public var trainImages: Int
    public var validationImages: Int
    public var skippedFiles: Int
    public var seeds: Int
    /// Epochs completed (per seed).
    public var epochs: Int
    public var candidateRelease: String?
    public var candidateDice: Double?
    public var championRelease: String?
    public var championDice: Double?
    /// The gate's --min-gain, when the run recorded it.
    public var minGain: Double?
    /// Why promoted / kept / failed / interrupted.
    public var reason: String?
    /// The process that ran it.
    public var pid: Int32?

    public init(id: Int64, startedAt: Date, finishedAt: Date? = nil, updatedAt: Date? = nil, dataDir: String, arguments: String,
                state: RetrainState, trainImages: Int, validationImages: Int, skippedFiles: Int, seeds: Int, epochs: Int,
                candidateRelease: String? = nil, candidateDice: Double? = nil, championRelease: String? = nil, championDice: Double? = nil,
                minGain: Double? = nil, reason: String? = nil, pid: Int32? = nil) {
        self.id = id
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.updatedAt = updatedAt
        self.dataDir = dataDir
        self.arguments = arguments
        self.state = state
        self.trainImages = trainImages
        self.validationImages = validationImages
        self.skippedFiles = skippedFiles
        self.seeds = seeds
        self.epochs = epochs
        self.candidateRelease = candidateRelease
        self.candidateDice = candidateDice
        self.championRelease = championRelease
        self.championDice = championDice
        self.minGain = minGain
        self.reason = reason
        self.pid = pid
    }

    /// Seconds from start to finish (or to the last heartbeat while running).
    public var durationSeconds: Double? {
        (finishedAt ?? updatedAt).map { $0.timeIntervalSince(startedAt) }
    }

    // Snake-case keys and dates as seconds since 1970, like the rest of status/stats JSON,
    // whatever date strategy the encoder has.
    enum CodingKeys: String, CodingKey {
        case id, state, epochs, seeds, reason, pid, arguments
        case startedAt = "started_at", finishedAt = "finished_at", updatedAt = "updated_at", dataDir = "data_dir"
        case trainImages = "train_images", validationImages = "validation_images", skippedFiles = "skipped_files"
        case candidateRelease = "candidate_release", candidateDice = "candidate_dice"
        case championRelease = "champion_release", championDice = "champion_dice", minGain = "min_gain"
        case durationSeconds = "duration_seconds"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(Int64.self, forKey: .id)
        startedAt = Date(timeIntervalSince1970: try c.decode(Double.self, forKey: .startedAt))
        finishedAt = try c.decodeIfPresent(Double.self, forKey: .finishedAt).map { Date(timeIntervalSince1970: $0) }
        updatedAt = try c.decodeIfPresent(Double.self, forKey: .updatedAt).map { Date(timeIntervalSince1970: $0) }
        dataDir = try c.decode(String.self, forKey: .dataDir)
        arguments = try c.decode(String.self, forKey: .arguments)
        state = try c.decode(RetrainState.self, forKey: .state)
        trainImages = try c.decode(Int.self, forKey: .trainImages)
        validationImages = try c.decode(Int.self, forKey: .validationImages)
        skippedFiles = try c.decode(Int.self, forKey: .skippedFiles)
        seeds = try c.decode(Int.self, forKey: .seeds)
        epochs = try c.decode(Int.self, forKey: .epochs)
        candidateRelease = try c.decodeIfPresent(String.self, forKey: .candidateRelease)
        candidateDice = try c.decodeIfPresent(Double.self, forKey: .candidateDice)
        championRelease = try c.decodeIfPresent(String.self, forKey: .championRelease)
        championDice = try c.decodeIfPresent(Double.self, forKey: .championDice)
        minGain = try c.decodeIfPresent(Double.self, forKey: .minGain)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
        pid = try c.decodeIfPresent(Int32.self, forKey: .pid)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(startedAt.timeIntervalSince1970, forKey: .startedAt)
        try c.encodeIfPresent(finishedAt?.timeIntervalSince1970, forKey: .finishedAt)
        try c.encodeIfPresent(updatedAt?.timeIntervalSince1970, forKey: .updatedAt)
        try c.encode(dataDir, forKey: .dataDir)
        try c.encode(arguments, forKey: .arguments)
        try c.encode(state, forKey: .state)
        try c.encode(trainImages, forKey: .trainImages)
        try c.encode(validationImages, forKey: .validationImages)
        try c.encode(skippedFiles, forKey: .skippedFiles)
        try c.encode(seeds, forKey: .seeds)
        try c.encode(epochs, forKey: .epochs)
        try c.encodeIfPresent(candidateRelease, forKey: .candidateRelease)
        try c.encodeIfPresent(candidateDice, forKey: .candidateDice)
        try c.encodeIfPresent(championRelease, forKey: .championRelease)
        try c.encodeIfPresent(championDice, forKey: .championDice)
        try c.encodeIfPresent(minGain, forKey: .minGain)
        try c.encodeIfPresent(reason, forKey: .reason)
        try c.encodeIfPresent(pid, forKey: .pid)
        // Derived, for scripts; ignored when decoding.
        try c.encodeIfPresent(durationSeconds, forKey: .durationSeconds)
    }
}

/// Which process owns a running retrain: pid, plus the process's start time (field 22 of
/// /proc/PID/stat) and the boot id, so a pid reused after the owner died is not taken for it.
public struct RetrainOwner: Sendable, Equatable {
    public var pid: Int32
    public var startTime: String?
    public var bootID: String?
    public init(pid: Int32, startTime: String?, bootID: String?) {
        self.pid = pid
        self.startTime = startTime
        self.bootID = bootID
    }

    public static var current: RetrainOwner {
        let pid = getpid()
        return RetrainOwner(pid: pid, startTime: startTime(of: pid), bootID: currentBootID())
    }

    /// The process's start time in clock ticks since boot, or nil when /proc does not show it.
    public static func startTime(of pid: Int32) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }

    static func currentBootID() -> String? {
        // Unreadable under ProcSubset=pid; the start time alone then tells reuse apart.
        guard let data = FileManager.default.contents(atPath: "/proc/sys/kernel/random/boot_id") else { return nil }
        let id = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? nil : id
    }

    /// True when the owner cannot still be running: another boot, no such pid, or the
    /// pid now belongs to a process that started at another time.
    public func isGone() -> Bool {
        if let bootID, let now = RetrainOwner.currentBootID(), bootID != now { return true }
        // EPERM means a process exists (another user's): only ESRCH says it is gone.
        if kill(pid, 0) != 0 && errno == ESRCH { return true }
        if let startTime, let now = RetrainOwner.startTime(of: pid), now != startTime { return true }
        return false
    }

    static func goneReason(_ owner: RetrainOwner?) -> String {
        guard let owner else { return "the run's process is unknown and it did not finish" }
        return "process \(owner.pid) ended without finishing the run (killed or crashed)"
    }
}
