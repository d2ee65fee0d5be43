import BonectlCommands
import Daemon
import Foundation
import Testing

/// A state dir with a ledger, and a config whose control socket nobody answers (the daemon is down).
final class LedgerFolder {
    let root = "/tmp/bsd-retrain-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    var state: String { "\(root)/state" }
    var ledgerPath: String { "\(state)/ledger.sqlite" }
    var configPath: String { "\(root)/bonesegd.conf" }

    init() throws {
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        try """
        [spool]
        dir = "\(root)/spool"
        [state]
        dir = "\(state)"
        [control]
        socket = "\(root)/nobody.sock"
        """.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func bonectl(_ arguments: [String]) throws -> CommandResult {
        try runCommand(Products.bonectl, arguments + ["--config", configPath])
    }
}

/// A process that has ended, as a retrain killed with -9 leaves its row: its pid and start time.
func deadOwner() throws -> RetrainOwner {
    let sleeper = Process()
    sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
    sleeper.arguments = ["30"]
    try sleeper.run()
    let pid = sleeper.processIdentifier
    let owner = RetrainOwner(pid: pid, startTime: RetrainOwner.startTime(of: pid), bootID: RetrainOwner.current.bootID)
    kill(pid, SIGKILL)
    sleeper.waitUntilExit()
    return owner
}

@Suite(.serialized)
struct RetrainLedgerTests {
    @Test("Retrain records: begin, progress, finish; newest first; JSON with snake_case keys and dates in seconds since 1970")
    func records() throws {
        let folder = try LedgerFolder()
        let ledger = try Ledger(path: folder.ledgerPath)
        let t0 = Date(timeIntervalSince1970: 1_790_000_000)
        let first = try ledger.beginRetrain(dataDir: "/data/train", arguments: "bonectl retrain --data /data/train", seeds: 3,
                                            trainImages: 300, validationImages: 80, skippedFiles: 4, at: t0)
        try ledger.updateRetrainProgress(id: first, epochs: 5)
        try ledger.finishRetrain(id: first, state: .promoted, candidateRelease: "r2", candidateDice: 0.91, championRelease: "r1",
                                 championDice: 0.9, reason: "candidate 0.9100 >= champion 0.9000 + 0.0000", at: t0.addingTimeInterval(3600))
        let second = try ledger.beginRetrain(dataDir: "/data/train", arguments: "bonectl retrain --data /data/train --min-gain 0.01",
                                             seeds: 2, trainImages: 310, validationImages: 82, skippedFiles: 1, minGain: 0.01,
                                             at: t0.addingTimeInterval(86400))
        let runs = try ledger.retrains()
        #expect(runs.map(\.id) == [second, first])
        #expect(runs[1].state == .promoted && runs[1].epochs == 5 && runs[1].candidateDice == 0.91 && runs[1].championRelease == "r1")
        #expect(runs[1].durationSeconds == 3600)
        #expect(runs[1].finishedAt == t0.addingTimeInterval(3600))
        #expect(runs[0].state == .running && runs[0].minGain == 0.01 && runs[0].pid == getpid() && runs[0].finishedAt == nil)
        #expect(try ledger.retrains(limit: 1).map(\.id) == [second])
        #expect(try ledger.retrains(since: t0.addingTimeInterval(60)).map(\.id) == [second])
        #expect(try ledger.liveRetrain()?.id == second, "this process is alive: its run is live")

        // A read-only handle (bonectl with the daemon down) sees the same rows.
        let reader = try Ledger(path: folder.ledgerPath, readOnly: true)
        #expect(try reader.retrains() == runs)

        // JSON: seconds since 1970 whatever the encoder's date strategy, and back unchanged.
        let data = try JSONEncoder().encode(runs[1])
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["started_at"] as? Double == 1_790_000_000)
        #expect(object["state"] as? String == "promoted")
        #expect(object["candidate_dice"] as? Double == 0.91)
        #expect(object["duration_seconds"] as? Double == 3600)
        #expect(try JSONDecoder().decode(RetrainRecord.self, from: data) == runs[1])
        #expect(try JSONDecoder().decode(RetrainRecord.self, from: JSONEncoder().encode(runs[0])) == runs[0])
        #expect(RetrainState(rawValue: "kept-champion") == .keptChampion)

        // Mistakes are refused by id, not written silently.
        #expect(throws: LedgerError.self) { try ledger.updateRetrainProgress(id: 999, epochs: 1) }
        #expect(throws: LedgerError.self) {
            try ledger.finishRetrain(id: second, state: .running, candidateRelease: nil, candidateDice: nil, championRelease: nil,
                                     championDice: nil, reason: nil)
        }
        #expect(try ledger.integrityCheck() == "ok")
    }

    @Test("A ledger written before the retrains table (read-only handle): no runs, no error")
    func oldLedger() throws {
        let folder = try LedgerFolder()
        let old = try Ledger(path: folder.ledgerPath)
        try old.execute("DROP TABLE retrains")
        let reader = try Ledger(path: folder.ledgerPath, readOnly: true)
        #expect(try reader.retrains().isEmpty)
        #expect(try reader.latestRetrainForStatus() == nil)
        let status = try folder.bonectl(["status", "--json"])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(!status.stdout.contains("last_retrain"))
    }

    @Test("Stale running rows: a killed owner's row becomes interrupted, a live owner's stays running")
    func staleRows() throws {
        let folder = try LedgerFolder()
        let ledger = try Ledger(path: folder.ledgerPath)
        let dead = try deadOwner()
        #expect(dead.isGone())
        #expect(!RetrainOwner.current.isGone())
        // The same pid started at another time (a reused pid) is not the owner.
        #expect(RetrainOwner(pid: getpid(), startTime: "1", bootID: nil).isGone())
        if let boot = RetrainOwner.current.bootID {
            #expect(RetrainOwner(pid: getpid(), startTime: nil, bootID: boot + "x").isGone())
        }

        let killed = try ledger.beginRetrain(dataDir: "/d", arguments: "bonectl retrain --data /d", seeds: 3, trainImages: 10,
                                             validationImages: 4, skippedFiles: 0, owner: dead)
        try ledger.updateRetrainProgress(id: killed, epochs: 2)
        // Before any retrain marks it, readers already report it as interrupted (the row is rewritten below).
        let shown = try #require(try ledger.latestRetrainForStatus())
        #expect(shown.state == .interrupted && shown.reason?.contains("process \(dead.pid)") == true)
        #expect(try ledger.retrains().first?.state == .interrupted)
        let status = try folder.bonectl(["status"])
        #expect(status.stdout.contains("interrupted after 2 epochs: process \(dead.pid) ended without finishing"), "\(status.stdout)")
        #expect(status.stdout.contains(", last progress "), "\(status.stdout)")
        let table = try folder.bonectl(["stats", "--retrains"])
        #expect(table.stdout.split(separator: "\n").dropFirst().first?.contains("interrupted") == true, "\(table.stdout)")

        let live = try ledger.beginRetrain(dataDir: "/d", arguments: "bonectl retrain --data /d", seeds: 3, trainImages: 10,
                                           validationImages: 4, skippedFiles: 0)
        #expect(try ledger.liveRetrain()?.id == live)
        let marked = try ledger.markStaleRetrainsInterrupted(at: Date(timeIntervalSince1970: 1_800_000_000))
        #expect(marked == 1)
        let runs = try ledger.retrains()
        #expect(runs.first { $0.id == live }?.state == .running)
        let interrupted = try #require(runs.first { $0.id == killed })
        #expect(interrupted.state == .interrupted && interrupted.epochs == 2)
        #expect(interrupted.finishedAt == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(try ledger.markStaleRetrainsInterrupted() == 0, "marking twice changes nothing")
    }

    @Test("Two handles: a write waits for the other's open transaction (busy timeout) and then succeeds")
    func twoHandles() throws {
        let folder = try LedgerFolder()
        let holder = try Ledger(path: folder.ledgerPath)
        let writer = try Ledger(path: folder.ledgerPath)
        let id = try writer.beginRetrain(dataDir: "/d", arguments: "a", seeds: 1, trainImages: 1, validationImages: 1, skippedFiles: 0)
        try holder.execute("BEGIN IMMEDIATE")
        try holder.setDaemonValueInTransaction()
        let released = DispatchSemaphore(value: 0)
        Thread {
            usleep(1_200_000)
            try? holder.execute("COMMIT")
            released.signal()
        }.start()
        let start = Date()
        try writer.updateRetrainProgress(id: id, epochs: 7)
        let waited = Date().timeIntervalSince(start)
        released.wait()
        #expect(waited >= 1.0, "the write did not wait for the other handle's transaction (\(waited) s)")
        #expect(try writer.retrains().first?.epochs == 7)
        #expect(try writer.daemonValues()["held"] == "yes", "the holder's transaction was lost")
    }

    @Test("Two processes: bonesegd keeps processing while this process writes a retrain run and holds transactions")
    func twoProcesses() throws {
        let h = try DaemonHarness(settle: 0.1)
        try h.startReady()
        let ledger = try Ledger(path: "\(h.state)/ledger.sqlite")
        let id = try ledger.beginRetrain(dataDir: "\(h.root)/train", arguments: "bonectl retrain", seeds: 3, trainImages: 50,
                                         validationImages: 10, skippedFiles: 2)
        let count = 60
        for i in 0..<count { try h.drop(Images.png(seed: 7000 + i, width: 64, height: 64), as: "ID\(i % 4)/x\(i).png") }
        var epoch = 0
        let deadline = Date().addingTimeInterval(60)
        while h.files(under: "done").count < count && Date() < deadline {
            epoch += 1
            try ledger.updateRetrainProgress(id: id, epochs: epoch)
            if epoch % 5 == 0 {
                // Hold the write lock for 0.8 s, as a slow transaction would; the daemon's writes wait.
                try ledger.execute("BEGIN IMMEDIATE")
                try ledger.execute("UPDATE retrains SET updated_at = updated_at WHERE id = \(id)")
                usleep(800_000)
                try ledger.execute("COMMIT")
            } else {
                usleep(50_000)
            }
        }
        #expect(h.files(under: "done").count == count, "done/ holds \(h.files(under: "done").count)")
        #expect(epoch >= 5, "no transaction was held while the daemon worked")
        try ledger.finishRetrain(id: id, state: .keptChampion, candidateRelease: "r2", candidateDice: 0.5, championRelease: "r1",
                                 championDice: 0.6, reason: "candidate below champion")
        let status = try h.status()
        #expect(status.daemon == "up")
        #expect(status.state == "running", "degraded: \(status.degradedReason ?? "")")
        #expect(status.total.processed == count && status.total.failed == 0)
        #expect(status.lastRetrain?.id == id && status.lastRetrain?.epochs == epoch && status.lastRetrain?.state == .keptChampion)
        h.stop()
        #expect(try ledger.integrityCheck() == "ok")
        #expect(!h.log.contains("ledger:"), "the daemon logged ledger errors:\n\(h.log.suffix(2000))")
    }

    @Test("bonectl status and stats with the daemon down: the last run and the run table, text and JSON")
    func statusStatsDown() throws {
        let folder = try LedgerFolder()
        let ledger = try Ledger(path: folder.ledgerPath)
        let t0 = Date(timeIntervalSince1970: 1_790_000_000)
        let promoted = try ledger.beginRetrain(dataDir: "/var/lib/bonesegd/train", arguments: "bonectl retrain --data /var/lib/bonesegd/train",
                                               seeds: 3, trainImages: 300, validationImages: 80, skippedFiles: 4, at: t0)
        try ledger.updateRetrainProgress(id: promoted, epochs: 12)
        try ledger.finishRetrain(id: promoted, state: .promoted, candidateRelease: "r2", candidateDice: 0.9123, championRelease: "r1",
                                 championDice: 0.905, reason: "better", at: t0.addingTimeInterval(6120))
        let kept = try ledger.beginRetrain(dataDir: "/var/lib/bonesegd/train", arguments: "bonectl retrain --min-gain 0.01", seeds: 3,
                                           trainImages: 310, validationImages: 80, skippedFiles: 1, minGain: 0.01, at: t0.addingTimeInterval(86400))
        try ledger.finishRetrain(id: kept, state: .keptChampion, candidateRelease: "r3", candidateDice: 0.88, championRelease: "r2",
                                 championDice: 0.9123, reason: "below", at: t0.addingTimeInterval(86400 + 5400))

        let text = try folder.bonectl(["status"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("bonesegd: DOWN"))
        #expect(text.stdout.contains("last retraining: finished 2026-09-22T15:43:20Z (took 1h 30m), kept champion r2 (candidate r3 Dice 0.8800 < champion 0.9123 + min gain 0.0100)"),
                "\(text.stdout)")
        #expect(text.stdout.contains("data: 310 train + 80 validation images, 1 file skipped; from /var/lib/bonesegd/train"), "\(text.stdout)")

        let json = try folder.bonectl(["status", "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let report = try JSONDecoder().decode(StatusReport.self, from: Data(json.stdout.utf8))
        #expect(report.daemon == "down")
        #expect(report.lastRetrain == (try ledger.retrains(limit: 1).first))
        #expect(json.stdout.contains("\"state\" : \"kept-champion\""), "\(json.stdout)")

        // stats: the job table as before, then the runs.
        let stats = try folder.bonectl(["stats"])
        #expect(stats.status == 0, "\(stats.stderr)")
        let lines = stats.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "no finished jobs")
        #expect(lines.contains { $0.hasPrefix("retraining (last 2 runs") })
        let header = try #require(lines.first { $0.hasPrefix("STARTED") })
        #expect(header.split(separator: " ", omittingEmptySubsequences: true) ==
                ["STARTED", "OUTCOME", "CANDIDATE", "DICE", "CHAMPION", "DICE", "EPOCHS", "SEEDS", "TRAIN/VAL/SKIP", "DURATION"])
        let rows = lines.drop { !$0.hasPrefix("STARTED") }.dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(rows.count == 2)
        #expect(Array(rows[0].dropFirst(2)) == ["kept-champion", "r3", "0.8800", "r2", "0.9123", "0", "3", "310/80/1", "1h", "30m"])
        #expect(Array(rows[1].dropFirst(2)) == ["promoted", "r2", "0.9123", "r1", "0.9050", "12", "3", "300/80/4", "1h", "42m"])

        let statsJSON = try folder.bonectl(["stats", "--json"])
        #expect(try JSONDecoder().decode([StatsGroup].self, from: Data(statsJSON.stdout.utf8)).isEmpty, "job stats JSON keeps its shape")
        let runsJSON = try folder.bonectl(["stats", "--retrains", "--json"])
        #expect(runsJSON.status == 0, "\(runsJSON.stderr)")
        #expect(try JSONDecoder().decode([RetrainRecord].self, from: Data(runsJSON.stdout.utf8)) == (try ledger.retrains()))
        let since = try folder.bonectl(["stats", "--retrains", "--json", "--since", "2026-09-22T00:00:00Z"])
        #expect(try JSONDecoder().decode([RetrainRecord].self, from: Data(since.stdout.utf8)).map(\.id) == [kept])

        // A run in progress, then one that failed.
        let running = try ledger.beginRetrain(dataDir: "/var/lib/bonesegd/train", arguments: "bonectl retrain", seeds: 3, trainImages: 320,
                                              validationImages: 80, skippedFiles: 0)
        try ledger.updateRetrainProgress(id: running, epochs: 3)
        let during = try folder.bonectl(["status"])
        #expect(during.stdout.contains("last retraining: running since "), "\(during.stdout)")
        #expect(during.stdout.contains("epoch 3 done (per seed, 3 seeds)"), "\(during.stdout)")
        try ledger.finishRetrain(id: running, state: .failed, candidateRelease: nil, candidateDice: nil, championRelease: "r2",
                                 championDice: nil, reason: "/var/lib/bonesegd/train: no labelled images")
        let failed = try folder.bonectl(["status"])
        #expect(failed.stdout.contains("failed after 3 epochs: /var/lib/bonesegd/train: no labelled images"), "\(failed.stdout)")
        let table = try folder.bonectl(["stats", "--retrains"])
        #expect(table.stdout.split(separator: "\n").dropFirst().first?.contains("failed") == true, "\(table.stdout)")

        // The first run on a machine with no active release: promoted, and the reason says why.
        let first = try ledger.beginRetrain(dataDir: "/d", arguments: "bonectl retrain", seeds: 1, trainImages: 5, validationImages: 2, skippedFiles: 0)
        try ledger.finishRetrain(id: first, state: .promoted, candidateRelease: "r9", candidateDice: 0.5, championRelease: nil, championDice: nil,
                                 reason: "no active release: the first candidate is activated")
        let promotedFirst = try folder.bonectl(["status"])
        #expect(promotedFirst.stdout.contains("promoted r9 with Dice 0.5000 (no active release: the first candidate is activated)"),
                "\(promotedFirst.stdout)")
    }

    @Test("bonectl status and stats with the daemon up: the run comes over the control socket, running then promoted")
    func statusStatsUp() throws {
        let h = try DaemonHarness()
        try h.startReady()
        #expect(try h.status().lastRetrain == nil)
        #expect(try runCommand(Products.bonectl, ["status", "--config", h.configPath]).stdout.contains("last retraining: none recorded"))
        let ledger = try Ledger(path: "\(h.state)/ledger.sqlite")
        let id = try ledger.beginRetrain(dataDir: "\(h.root)/train", arguments: "bonectl retrain", seeds: 2, trainImages: 40,
                                         validationImages: 8, skippedFiles: 3)
        try ledger.updateRetrainProgress(id: id, epochs: 4)
        let running = try h.status()
        #expect(running.daemon == "up")
        #expect(running.lastRetrain?.state == .running && running.lastRetrain?.epochs == 4)

        try h.makeRelease("r2")
        let config = try DaemonConfig.load(path: h.configPath, required: true)
        let outcome = try ReleaseActivation.activate(release: "r2", config: config)
        try ledger.finishRetrain(id: id, state: .promoted, candidateRelease: "r2", candidateDice: 0.7, championRelease: "r1",
                                 championDice: 0.6, reason: "better")
        #expect(outcome.previous == "r1" && outcome.changed)
        guard case .reloaded = outcome.daemon else {
            Issue.record("the running daemon was not told: \(outcome.daemon)")
            return
        }
        let after = try h.status()
        #expect(after.release?.name == "r2", "the daemon did not switch to the promoted release")
        #expect(after.lastRetrain?.state == .promoted)
        let text = try runCommand(Products.bonectl, ["status", "--config", h.configPath])
        #expect(text.stdout.contains("promoted r2 with Dice 0.7000 (champion was r1, Dice 0.6000)"), "\(text.stdout)")
        #expect(text.stdout.contains("data: 40 train + 8 validation images, 3 files skipped"), "\(text.stdout)")
        let runs = try runCommand(Products.bonectl, ["stats", "--retrains", "--json", "--config", h.configPath])
        #expect(try JSONDecoder().decode([RetrainRecord].self, from: Data(runs.stdout.utf8)).map(\.state) == [.promoted])
        // The socket's reply carries the runs itself (not only the ledger fallback).
        let reply = try ControlClient.send(ControlRequest(command: "stats", retrains: 5), path: h.socket)
        #expect(reply.retrains?.map(\.id) == [id])
        h.stop()
    }

    @Test("ReleaseActivation: a release that does not verify changes nothing; with no daemon the link still moves")
    func activationWithoutDaemon() throws {
        let h = try DaemonHarness()
        try h.makeRelease("r2")
        try h.makeRelease("broken", valid: false)
        let config = try DaemonConfig.load(path: h.configPath, required: true)
        #expect(throws: ReleaseActivationError.self) { try ReleaseActivation.activate(release: "broken", config: config) }
        #expect(ReleaseLinks(stateDir: h.state).active() == "r1")
        let outcome = try ReleaseActivation.activate(release: "r2", config: config)
        guard case .notRunning(let message) = outcome.daemon else {
            Issue.record("no daemon runs, yet: \(outcome.daemon)")
            return
        }
        #expect(message.contains("serves the new release when it starts"))
        #expect(ReleaseLinks(stateDir: h.state).active() == "r2" && ReleaseLinks(stateDir: h.state).previous() == "r1")
        let again = try ReleaseActivation.activate(release: "r2", config: config)
        #expect(!again.changed)
    }
}

extension Ledger {
    /// Writes inside a transaction the caller opened with execute("BEGIN IMMEDIATE").
    fileprivate func setDaemonValueInTransaction() throws {
        try execute("INSERT INTO daemon(key, value) VALUES ('held', 'yes') ON CONFLICT(key) DO UPDATE SET value = excluded.value")
    }
}
