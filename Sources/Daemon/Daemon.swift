import CSystemd
import Foundation
import Imaging
import Models
import SystemIO

/// A claimed input waiting in work/ or being processed.
struct Job: Sendable {
    var id: Int64
    let relative: String
    let claimedAt: Double
}

/// An inbox file seen but not yet claimed, for the settle check.
struct Candidate {
    var snapshot: FileSnapshot?
    var changedAt: Double
    var stableChecks: Int
    let sequence: Int
}

/// How one attempt ended.
enum AttemptResult {
    /// The input left work/ (outputs written, or quarantined, or it vanished).
    case finished
    /// Out of space, I/O error, permission on an output folder: input stays, retry later.
    case transient(String)
    /// The processor failed for a reason other than the input's bytes: retry later
    /// (counted against max_attempts).
    case failedAttempt(String)
}

/// bonesegd: watches the inbox, claims settled files into work/, runs the release's
/// processor on threads of its own, writes outputs durably, keeps the ledger, and
/// answers the control socket. One instance per spool.
public final class Daemon: @unchecked Sendable {
    public let config: DaemonConfig
    let spool: Spool
    let log: DaemonLog
    let notifier: SystemdNotifier
    let loader: any ProcessorLoader
    let links: ReleaseLinks
    private(set) var ledger: Ledger!
    private var watcher: InotifyWatcher?
    private var control: ControlServer?

    // Shared state, guarded by `cond`.
    private let cond = NSCondition()
    private var candidates: [String: Candidate] = [:]
    private var candidateSequence = 0
    private var queue: [Job] = []
    private var activeJobs: [Int: Job] = [:]
    private var inFlight: Set<String> = []
    private var current: LoadedProcessor?
    private var paused = false
    private var stopping = false
    private var degradedReason: String?
    private var retryAt = 0.0
    private var backoff: Double
    private var rescanRequested = false
    private var reloadRequested = false
    private var reloading = false
    private var lastReload: StatusReport.Reload?
    private var rescans = 0
    private var overflows = 0
    private var workersRunning = 0
    private let startedAt = Date()
    private let startedMonotonic = monotonicSeconds()
    private var wakeFd: Int32 = -1
    private var lastClaimWarning = -Double.infinity

    public init(config: DaemonConfig, loader: any ProcessorLoader,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.config = config
        self.loader = loader
        spool = Spool(config: config)
        log = DaemonLog(target: config.logTarget, maxLevel: config.logLevel, environment: environment)
        notifier = SystemdNotifier(environment: environment)
        links = ReleaseLinks(stateDir: config.stateDir)
        backoff = config.retryInitialSeconds
    }

    /// The release to serve: the configured name, else the `active` symlink.
    func releaseToServe() throws -> String {
        if !config.releaseName.isEmpty { return config.releaseName }
        guard let name = links.active() else {
            throw ReleaseLoadError(release: "(active)", reason: "\(config.activeLink) does not exist; activate one with `bonectl release activate NAME` or set release.name")
        }
        return name
    }

    // MARK: run

    /// Runs until SIGTERM or SIGINT; returns the process exit code.
    public func run() -> Int32 {
        let signalFd = csystemd_install_signal_pipe()
        wakeFd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard signalFd >= 0, wakeFd >= 0 else {
            log.log(.err, "signal pipe/eventfd failed: \(String(cString: strerror(errno)))")
            return 1
        }
        do {
            try start()
        } catch {
            log.log(.err, "bonesegd cannot start: \(error)")
            notifier.send("STATUS=cannot start: \(error)")
            return 1
        }
        var fds = [pollfd(fd: signalFd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFd, events: Int16(POLLIN), revents: 0)]
        let tick = max(0.02, min(0.25, config.settleSeconds / 4))
        var nextRescan = monotonicSeconds() + config.rescanSeconds
        var nextExpiry = monotonicSeconds()
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            _ = poll(&fds, 2, Int32(tick * 1000))
            if fds[1].revents != 0 {
                var value: UInt64 = 0
                _ = read(wakeFd, &value, 8)
            }
            var terminate = false
            if fds[0].revents != 0 {
                var signal: UInt8 = 0
                while read(signalFd, &signal, 1) == 1 {
                    switch Int32(signal) {
                    case SIGTERM, SIGINT: terminate = true
                    case SIGHUP: requestReload()
                    default: break
                    }
                }
            }
            if terminate { break }
            let now = monotonicSeconds()
            notifier.watchdogTick(now: now)
            cond.lock()
            let rescan = rescanRequested || now >= nextRescan
            rescanRequested = false
            let reload = reloadRequested && !reloading
            if reload {
                reloadRequested = false
                reloading = true
            }
            cond.unlock()
            if rescan {
                fullRescan()
                nextRescan = now + config.rescanSeconds
            }
            if reload {
                let thread = Thread { [self] in self.performReload() }
                thread.name = "bonesegd-reload"
                thread.start()
            }
            settleAndClaim()
            if now >= nextExpiry {
                if config.retention == .keep, config.keepDays > 0 {
                    let removed = spool.expireDone(olderThanDays: config.keepDays)
                    if removed > 0 { log.log(.info, "retention: removed \(removed) originals older than \(config.keepDays) days from \(spool.done)") }
                }
                nextExpiry = now + 3600
            }
            notifier.status(statusLine())
        }
        shutdown()
        return 0
    }

    private func start() throws {
        try spool.create()
        try AtomicFile.makeDirectories(config.stateDir)
        ledger = try Ledger(path: config.ledgerPath)
        let name = try releaseToServe()
        let loaded = try loader.load(releaseName: name)
        cond.lock()
        current = loaded
        cond.unlock()
        log.log(.info, "release \(loaded.release) loaded (\(config.engine.rawValue), \(loaded.members.count) members)")

        // Watch first, then scan work/ and inbox/.
        let watcher = try InotifyWatcher(root: spool.inbox) { [weak self] event in self?.watchEvent(event) }
        self.watcher = watcher
        let inboxFiles = watcher.watchTree()
        watcher.start()

        let stale = spool.removeStaleTemporaries()
        if stale > 0 { log.log(.notice, "removed \(stale) temporary files left by an interrupted write") }
        let work = spool.work
        let interrupted = try ledger.reconcile(at: Date().timeIntervalSince1970) { access("\(work)/\($0)", F_OK) == 0 }
        let leftovers = Spool.walk(root: spool.work) { _ in }.sorted()
        if !leftovers.isEmpty || interrupted > 0 {
            log.log(.notice, "recovering \(leftovers.count) inputs left in \(spool.work) (\(interrupted) interrupted jobs in the ledger)")
        }
        let now = monotonicSeconds()
        let ids = try ledger.recordClaims(leftovers, at: Date().timeIntervalSince1970)
        cond.lock()
        for (rel, id) in zip(leftovers, ids) {
            queue.append(Job(id: id, relative: rel, claimedAt: now))
            inFlight.insert(rel)
        }
        for rel in inboxFiles { addCandidate(rel) }
        cond.unlock()

        let control = try ControlServer(path: config.controlSocket, mode: config.controlMode, group: config.controlGroup, log: log) { [weak self] request in
            self?.handle(request) ?? ControlReply(ok: false, message: "daemon is stopping")
        }
        self.control = control
        control.start()

        for index in 0..<config.workers {
            cond.lock()
            workersRunning += 1
            cond.unlock()
            let thread = Thread { [self] in self.workerLoop(index: index) }
            thread.name = "bonesegd-worker-\(index)"
            thread.stackSize = 8 << 20
            thread.start()
        }
        try? ledger.setDaemonValue("started_at", String(Date().timeIntervalSince1970))
        try? ledger.setDaemonValue("pid", String(getpid()))
        notifier.ready(status: statusLine())
        log.log(.notice, "bonesegd ready: release \(loaded.release), spool \(config.spoolDir), \(inboxFiles.count) files waiting, \(leftovers.count) recovered, control \(config.controlSocket)")
    }

    private func shutdown() {
        notifier.stopping()
        log.log(.notice, "stopping: finishing the jobs in progress")
        cond.lock()
        stopping = true
        cond.broadcast()
        while workersRunning > 0 { cond.wait() }
        let unstarted = queue
        queue.removeAll()
        cond.unlock()
        // Unstarted jobs go back to the inbox (or stay in work/ if the name is taken there).
        var returned = 0
        for job in unstarted {
            let inboxPath = "\(spool.inbox)/\(job.relative)"
            if access(inboxPath, F_OK) != 0, (try? Spool.move("\(spool.work)/\(job.relative)", to: inboxPath)) != nil {
                returned += 1
                try? ledger.recordOutcome(id: job.id, state: .returned, error: nil, timings: JobTimings(), classAreas: nil,
                                          finalized: true, at: Date().timeIntervalSince1970)
            }
        }
        watcher?.stop()
        control?.stop()
        try? ledger.setDaemonValue("stopped_at", String(Date().timeIntervalSince1970))
        log.log(.notice, "stopped; \(returned) unstarted jobs returned to the inbox")
    }

    // MARK: noticing and claiming

    private func addCandidate(_ rel: String) {
        if candidates[rel] == nil {
            candidateSequence += 1
            candidates[rel] = Candidate(snapshot: nil, changedAt: monotonicSeconds(), stableChecks: 0, sequence: candidateSequence)
        }
    }

    private func watchEvent(_ event: WatchEvent) {
        cond.lock()
        switch event {
        case .file(let rel):
            if Spool.isEligible(relativePath: rel) { addCandidate(rel) }
        case .overflow:
            overflows += 1
            rescanRequested = true
        }
        cond.unlock()
        if case .overflow = event { log.log(.warning, "inotify queue overflowed; rescanning \(spool.inbox)") }
        wake()
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFd, &one, 8)
    }

    private func fullRescan() {
        guard let watcher else { return }
        let files = watcher.watchTree()
        cond.lock()
        rescans += 1
        for rel in files { addCandidate(rel) }
        cond.unlock()
    }

    /// Stats candidates, claims the settled ones (up to the queue's room) by rename into work/.
    private func settleAndClaim() {
        cond.lock()
        let room = paused || stopping ? 0 : max(0, 16 * config.workers + 16 - queue.count)
        let order = candidates.sorted { $0.value.sequence < $1.value.sequence }.prefix(4096)
        let busy = inFlight
        cond.unlock()
        if order.isEmpty { return }
        let now = monotonicSeconds()
        let wall = Date().timeIntervalSince1970
        var updates = [(String, Candidate?)]()
        var settled = [String]()
        for (rel, var candidate) in order {
            guard let snapshot = FileSnapshot.of("\(spool.inbox)/\(rel)") else {
                updates.append((rel, nil))
                continue
            }
            if snapshot != candidate.snapshot {
                candidate.snapshot = snapshot
                candidate.changedAt = now
                candidate.stableChecks = 0
                updates.append((rel, candidate))
                continue
            }
            candidate.stableChecks += 1
            updates.append((rel, candidate))
            let age = wall - Double(snapshot.mtimeNs) / 1e9
            let isSettled = now - candidate.changedAt >= config.settleSeconds || (age >= config.settleSeconds && candidate.stableChecks >= 1)
            if isSettled, settled.count < room, !busy.contains(rel) { settled.append(rel) }
        }
        var claimed = [String]()
        var gone = Set<String>()
        var claimFailure: String?
        for rel in settled {
            let target = "\(spool.work)/\(rel)"
            do {
                try Spool.move("\(spool.inbox)/\(rel)", to: target)
                claimed.append(rel)
            } catch let error as FileError where error.code == ENOENT {
                gone.insert(rel)
            } catch {
                claimFailure = "cannot claim \(rel) into \(spool.work): \(error)"
            }
        }
        var ids = [Int64]()
        if !claimed.isEmpty {
            do {
                ids = try ledger.recordClaims(claimed, at: wall)
            } catch {
                // The files are in work/ and will be processed; their claim rows are made at start.
                log.log(.warning, "ledger: \(error)")
                ids = claimed.map { _ in -1 }
            }
        }
        cond.lock()
        for (rel, candidate) in updates {
            if candidate == nil || gone.contains(rel) { candidates[rel] = nil } else if candidates[rel] != nil { candidates[rel] = candidate }
        }
        for (rel, id) in zip(claimed, ids) {
            candidates[rel] = nil
            queue.append(Job(id: id, relative: rel, claimedAt: now))
            inFlight.insert(rel)
        }
        if !claimed.isEmpty { cond.broadcast() }
        // A claim that fails (work/ unwritable or full) makes the daemon degraded until a
        // job succeeds again; the file stays in the inbox and is tried on the next tick.
        var report = false
        if let claimFailure {
            degradedReason = claimFailure
            report = now - lastClaimWarning >= 30
            if report { lastClaimWarning = now }
        }
        cond.unlock()
        if report, let claimFailure { log.log(.warning, "degraded: \(claimFailure)") }
    }

    // MARK: workers

    private func workerLoop(index: Int) {
        while true {
            cond.lock()
            while !stopping && (paused || queue.isEmpty || monotonicSeconds() < retryAt) {
                _ = cond.wait(until: Date().addingTimeInterval(0.2))
            }
            if stopping {
                workersRunning -= 1
                cond.broadcast()
                cond.unlock()
                return
            }
            let job = queue.removeFirst()
            activeJobs[index] = job
            let processor = current!
            cond.unlock()

            let result = attempt(job, processor: processor)

            cond.lock()
            activeJobs[index] = nil
            switch result {
            case .finished:
                inFlight.remove(job.relative)
                if degradedReason != nil {
                    log.log(.notice, "recovered: outputs are being written again")
                    degradedReason = nil
                }
                backoff = config.retryInitialSeconds
                retryAt = 0
            case .transient(let reason):
                degradedReason = reason
                retryAt = monotonicSeconds() + backoff
                log.log(.warning, "degraded: \(reason); \(job.relative) stays in work/, retry in \(String(format: "%.1f", backoff)) s")
                backoff = min(config.retryMaxSeconds, backoff * 2)
                queue.insert(requeued(job), at: 0)
            case .failedAttempt:
                queue.append(requeued(job))
            }
            cond.unlock()
        }
    }

    private func requeued(_ job: Job) -> Job {
        let id = (try? ledger.recordClaims([job.relative], at: Date().timeIntervalSince1970).first) ?? -1
        return Job(id: id, relative: job.relative, claimedAt: monotonicSeconds())
    }

    private func fields(_ job: Job, _ outcome: String, _ release: String, _ ms: Double, _ sha: String) -> [String: String] {
        ["INPUT": job.relative, "OUTCOME": outcome, "RELEASE": release, "DURATION_MS": String(format: "%.1f", ms), "INPUT_SHA256": sha]
    }

    /// One attempt at one job; never throws, never traps on input.
    func attempt(_ job: Job, processor: LoadedProcessor) -> AttemptResult {
        var job = job
        let workPath = "\(spool.work)/\(job.relative)"
        let started = monotonicSeconds()
        let startedWall = Date().timeIntervalSince1970
        var timings = JobTimings()
        timings.queueMs = (started - job.claimedAt) * 1000
        do {
            if job.id < 0 { job.id = try ledger.recordClaims([job.relative], at: startedWall)[0] }
            // Read, with the size limit checked before the bytes are loaded.
            guard let snapshot = FileSnapshot.of(workPath) else {
                try ledger.recordOutcome(id: job.id, state: .failed, error: "\(workPath): vanished from work/ before processing",
                                         timings: timings, classAreas: nil, finalized: true, at: startedWall)
                log.log(.warning, "\(job.relative): vanished from work/ before processing")
                return .finished
            }
            if snapshot.size > Int64(config.maxInputBytes) {
                let sha = (try? SHA256Digest.hex(ofFile: workPath)) ?? ""
                let attempt = try ledger.attemptsBefore(input: job.relative, sha256: sha) + 1
                try ledger.recordStart(id: job.id, sha256: sha, size: Int(snapshot.size), attempt: attempt, release: processor.release, at: startedWall)
                return try quarantine(job, error: "\(snapshot.size) bytes is over spool.max_input_bytes (\(config.maxInputBytes))",
                                      attempt: attempt, release: processor.release, sha: sha, size: Int(snapshot.size), timings: timings)
            }
            let bytes: [UInt8]
            do {
                bytes = try AtomicFile.read(workPath)
            } catch let error as FileError where !error.isTransient {
                let attempt = try ledger.attemptsBefore(input: job.relative, sha256: "") + 1
                try ledger.recordStart(id: job.id, sha256: "", size: Int(snapshot.size), attempt: attempt, release: processor.release, at: startedWall)
                return try quarantine(job, error: "unreadable: \(error)", attempt: attempt, release: processor.release, sha: "", size: Int(snapshot.size), timings: timings)
            }
            let sha = SHA256Digest.hex(bytes)
            timings.readMs = (monotonicSeconds() - started) * 1000

            // A finished attempt whose input move did not complete: finish the move only.
            if let pending = try ledger.pendingFinalize(input: job.relative, sha256: sha) {
                try finalize(job.relative, state: pending.state)
                try ledger.markFinalized(id: pending.id, at: Date().timeIntervalSince1970)
                try ledger.recordOutcome(id: job.id, state: .returned, error: "already \(pending.state.rawValue) as job \(pending.id); input move completed",
                                         timings: timings, classAreas: nil, finalized: true, at: Date().timeIntervalSince1970)
                log.log(.info, "\(job.relative): already \(pending.state.rawValue) (job \(pending.id)); moved out of work/")
                return .finished
            }
            let attempt = try ledger.attemptsBefore(input: job.relative, sha256: sha) + 1
            try ledger.recordStart(id: job.id, sha256: sha, size: bytes.count, attempt: attempt, release: processor.release, at: startedWall)
            if attempt > config.maxAttempts {
                let last = (try? ledger.lastError()).flatMap { $0?.input == job.relative ? $0?.error : nil }
                return try quarantine(job, error: "gave up after \(attempt - 1) interrupted or failed attempts (processing.max_attempts = \(config.maxAttempts))"
                                      + (last.map { "; last error: \($0)" } ?? ""),
                                      attempt: attempt, release: processor.release, sha: sha, size: bytes.count, timings: timings)
            }

            let processStart = monotonicSeconds()
            let output: ProcessedImage
            do {
                output = try processor.processor.process(imageBytes: bytes, imageName: (job.relative as NSString).lastPathComponent)
            } catch let error as ImageDecodeError {
                timings.processMs = (monotonicSeconds() - processStart) * 1000
                return try quarantine(job, error: "not a usable image: \(error.message)", attempt: attempt, release: processor.release,
                                      sha: sha, size: bytes.count, timings: timings)
            } catch {
                timings.processMs = (monotonicSeconds() - processStart) * 1000
                let message = "processing failed (attempt \(attempt) of \(config.maxAttempts)): \(error)"
                try ledger.recordOutcome(id: job.id, state: .failed, error: message, timings: timings, classAreas: nil,
                                         finalized: false, at: Date().timeIntervalSince1970)
                log.log(.err, "\(job.relative): \(message)", fields: fields(job, "failed", processor.release, timings.processMs, sha))
                if attempt >= config.maxAttempts {
                    return try quarantine(job, error: message, attempt: attempt, release: processor.release, sha: sha, size: bytes.count,
                                          timings: timings, newRow: true)
                }
                return .failedAttempt(message)
            }
            timings.processMs = (monotonicSeconds() - processStart) * 1000

            let writeStart = monotonicSeconds()
            let paths = spool.outputPaths(for: job.relative)
            do {
                try AtomicFile.makeDirectories((paths.csv as NSString).deletingLastPathComponent)
                try AtomicFile.write(output.csv, to: paths.csv)
                try AtomicFile.write(output.overlayPNG, to: paths.overlay)
                // The sidecar last: its presence marks a complete set.
                try AtomicFile.write(output.sidecarJSON, to: paths.sidecar)
            } catch let error as FileError {
                if error.isTransient { return transient(job, error: error, timings: timings, release: processor.release, sha: sha) }
                let message = "cannot write outputs: \(error)"
                try ledger.recordOutcome(id: job.id, state: .failed, error: message, timings: timings, classAreas: nil, finalized: false,
                                         at: Date().timeIntervalSince1970)
                log.log(.err, "\(job.relative): \(message)")
                return .failedAttempt(message)
            }
            timings.writeMs = (monotonicSeconds() - writeStart) * 1000
            timings.totalMs = (monotonicSeconds() - started) * 1000 + timings.queueMs
            try ledger.recordOutcome(id: job.id, state: .succeeded, error: nil, timings: timings, classAreas: output.classAreas,
                                     finalized: false, at: Date().timeIntervalSince1970)
            try finalize(job.relative, state: .succeeded)
            try ledger.markFinalized(id: job.id, at: Date().timeIntervalSince1970)
            let ms = (monotonicSeconds() - started) * 1000
            log.log(.info, "\(job.relative): succeeded in \(String(format: "%.1f", ms)) ms (release \(processor.release))",
                    fields: fields(job, "succeeded", processor.release, ms, sha))
            return .finished
        } catch let error as FileError where error.isTransient {
            return transient(job, error: error, timings: timings, release: processor.release, sha: "")
        } catch {
            // Ledger or file trouble outside the input's control: keep the input, retry later.
            let message = "\(error)"
            try? ledger.recordOutcome(id: job.id, state: .failed, error: "transient: \(message)", timings: timings, classAreas: nil,
                                      finalized: false, at: Date().timeIntervalSince1970)
            return .transient(message)
        }
    }

    private func transient(_ job: Job, error: FileError, timings: JobTimings, release: String, sha: String) -> AttemptResult {
        let message = "\(error)"
        try? ledger.recordOutcome(id: job.id, state: .failed, error: "transient: \(message)", timings: timings, classAreas: nil,
                                  finalized: false, at: Date().timeIntervalSince1970)
        log.log(.warning, "\(job.relative): \(message) (transient; the input stays in work/)", fields: fields(job, "transient", release, 0, sha))
        return .transient(message)
    }

    /// Moves a finished input out of work/: done/ or deleted after success, quarantine/ after rejection.
    private func finalize(_ rel: String, state: JobState) throws {
        let workPath = "\(spool.work)/\(rel)"
        if state == .quarantined {
            try Spool.move(workPath, to: "\(spool.quarantine)/\(rel)")
        } else if config.retention == .delete {
            if unlink(workPath) != 0 && errno != ENOENT { throw FileError(path: workPath, operation: "unlink", code: errno) }
            try AtomicFile.syncDirectory((workPath as NSString).deletingLastPathComponent)
        } else {
            try Spool.move(workPath, to: "\(spool.done)/\(rel)")
        }
    }

    private func quarantine(_ job: Job, error: String, attempt: Int, release: String, sha: String, size: Int,
                            timings: JobTimings, newRow: Bool = false) throws -> AttemptResult {
        var job = job
        if newRow {
            job.id = try ledger.recordClaims([job.relative], at: Date().timeIntervalSince1970)[0]
            try ledger.recordStart(id: job.id, sha256: sha, size: size, attempt: attempt, release: release, at: Date().timeIntervalSince1970)
        }
        let now = Date()
        let reason: [String: Any] = [
            "input": job.relative,
            "error": error,
            "attempts": attempt,
            "release": release,
            "sha256": sha,
            "size": size,
            "job": job.id,
            "claimed_at": ISO8601DateFormatter().string(from: now.addingTimeInterval(-timings.queueMs / 1000 - timings.readMs / 1000 - timings.processMs / 1000)),
            "quarantined_at": ISO8601DateFormatter().string(from: now),
        ]
        let bytes = try JSONSerialization.data(withJSONObject: reason, options: [.sortedKeys, .prettyPrinted])
        let reasonPath = "\(spool.quarantine)/\(job.relative).reason.json"
        try AtomicFile.makeDirectories((reasonPath as NSString).deletingLastPathComponent)
        try AtomicFile.write(bytes, to: reasonPath)
        try ledger.recordOutcome(id: job.id, state: .quarantined, error: error, timings: timings, classAreas: nil, finalized: false,
                                 at: now.timeIntervalSince1970)
        try finalize(job.relative, state: .quarantined)
        try ledger.markFinalized(id: job.id, at: Date().timeIntervalSince1970)
        let ms = timings.readMs + timings.processMs
        log.log(.warning, "\(job.relative): quarantined after \(String(format: "%.1f", ms)) ms: \(error)",
                fields: fields(job, "quarantined", release, ms, sha))
        return .finished
    }

    // MARK: reload

    private func requestReload() {
        cond.lock()
        reloadRequested = true
        cond.unlock()
        wake()
    }

    /// Loads the release to serve (and warms it up) while the old one keeps serving,
    /// then switches; a release that fails leaves the old one serving.
    @discardableResult
    func performReload() -> StatusReport.Reload {
        notifier.reloading()
        log.log(.notice, "reloading")
        let at = Date().timeIntervalSince1970
        let record: StatusReport.Reload
        do {
            let name = try releaseToServe()
            let loaded = try loader.load(releaseName: name)
            cond.lock()
            let old = current?.release ?? "-"
            current = loaded
            cond.unlock()
            record = StatusReport.Reload(at: at, release: loaded.release, ok: true, error: nil)
            log.log(.notice, "reload: now serving release \(loaded.release) (was \(old))")
        } catch {
            cond.lock()
            let old = current?.release ?? "-"
            cond.unlock()
            record = StatusReport.Reload(at: at, release: old, ok: false, error: "\(error)")
            log.log(.err, "reload failed, release \(old) keeps serving: \(error)")
        }
        cond.lock()
        lastReload = record
        reloading = false
        cond.unlock()
        notifier.ready(status: statusLine())
        return record
    }

    /// A reload from the control socket: waits for the result.
    func reloadNow() -> StatusReport.Reload {
        cond.lock()
        while reloading { _ = cond.wait(until: Date().addingTimeInterval(0.1)) }
        reloading = true
        cond.unlock()
        return performReload()
    }

    // MARK: status

    func stateName() -> String {
        if stopping { return "stopping" }
        if paused { return "paused" }
        if degradedReason != nil { return "degraded" }
        return "running"
    }

    private func statusLine() -> String {
        cond.lock()
        let state = stateName()
        let depth = candidates.count + queue.count + activeJobs.count
        let release = current?.release ?? "-"
        let reason = degradedReason
        cond.unlock()
        return "\(state); release \(release); queue \(depth)" + (reason.map { "; \($0)" } ?? "")
    }

    public func status() -> StatusReport {
        cond.lock()
        let state = stateName()
        let queue = StatusReport.Queue(waiting: candidates.count, queued: self.queue.count, active: activeJobs.count,
                                       depth: candidates.count + self.queue.count + activeJobs.count)
        let release = current.map { StatusReport.Release(name: $0.release, members: $0.members, engine: config.engine.rawValue) }
        let reason = degradedReason
        let reload = lastReload
        let rescans = self.rescans, overflows = self.overflows
        cond.unlock()
        return StatusReport(
            daemon: "up", state: state, pid: getpid(), startedAt: startedAt.timeIntervalSince1970,
            uptimeSeconds: monotonicSeconds() - startedMonotonic, release: release, queue: queue,
            today: (try? ledger.counts(since: StatusReport.startOfToday())) ?? OutcomeCounts(),
            total: (try? ledger.counts(since: nil)) ?? OutcomeCounts(),
            latencyMs: (try? ledger.latency()) ?? LatencySummary(),
            lastError: (try? ledger.lastError()) ?? nil,
            degradedReason: reason, lastReload: reload, rescans: rescans, overflows: overflows,
            lastRetrain: (try? ledger.latestRetrainForStatus()) ?? nil)
    }

    func handle(_ request: ControlRequest) -> ControlReply {
        switch request.command {
        case "status":
            return ControlReply(ok: true, message: "status", status: status())
        case "stats":
            do {
                let since = request.since
                let groups = try ledger.stats(since: since, by: Ledger.Grouping(rawValue: request.by ?? "day") ?? .day)
                let retrains = try ledger.retrains(limit: request.retrains ?? 20, since: since.map { Date(timeIntervalSince1970: $0) })
                return ControlReply(ok: true, message: "stats", stats: groups, retrains: retrains)
            } catch {
                return ControlReply(ok: false, message: "\(error)")
            }
        case "reload":
            let record = reloadNow()
            return record.ok ? ControlReply(ok: true, message: "serving release \(record.release)")
                : ControlReply(ok: false, message: "reload failed, release \(record.release) keeps serving: \(record.error ?? "")")
        case "pause":
            cond.lock()
            paused = true
            cond.unlock()
            log.log(.notice, "paused by control request")
            wake()
            return ControlReply(ok: true, message: "paused: no new jobs start; jobs in progress finish")
        case "resume":
            cond.lock()
            paused = false
            cond.broadcast()
            cond.unlock()
            log.log(.notice, "resumed by control request")
            wake()
            return ControlReply(ok: true, message: "resumed")
        default:
            return ControlReply(ok: false, message: "unknown command \(request.command) (known: status, stats, reload, pause, resume)")
        }
    }
}
