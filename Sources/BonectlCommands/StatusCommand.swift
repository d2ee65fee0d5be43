import ArgumentParser
import Daemon
import Foundation

/// Where bonectl finds the daemon: its config (for the state dir and socket), with overrides.
struct DaemonOptions: ParsableArguments {
    @Option(name: .long, help: "bonesegd's configuration file.") var config: String = DaemonConfig.defaultPath
    @Option(name: .customLong("state-dir"), help: "Overrides state.dir (ledger, releases, active link).") var stateDir: String?
    @Option(name: .long, help: "Overrides control.socket.") var socket: String?

    func load() throws -> DaemonConfig {
        var config: DaemonConfig
        do {
            config = try DaemonConfig.load(path: self.config, required: self.config != DaemonConfig.defaultPath)
        } catch {
            throw ValidationError("\(error)")
        }
        if let stateDir { config.stateDir = stateDir }
        if let socket { config.controlSocket = socket }
        return config
    }
}

func encodeJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

func formatMs(_ ms: Double) -> String { ms >= 1000 ? String(format: "%.2f s", ms / 1000) : String(format: "%.1f ms", ms) }

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds)
    if s >= 86400 { return "\(s / 86400)d \(s % 86400 / 3600)h" }
    if s >= 3600 { return "\(s / 3600)h \(s % 3600 / 60)m" }
    if s >= 60 { return "\(s / 60)m \(s % 60)s" }
    return "\(s)s"
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show bonesegd's state, release, queue, outcomes and latency (from the ledger when the daemon is down).")

    @OptionGroup var daemon: DaemonOptions
    @Flag(help: "Machine-readable output.") var json = false

    func run() throws {
        let config = try daemon.load()
        let report: StatusReport
        var downReason: String?
        do {
            let reply = try ControlClient.send(ControlRequest(command: "status"), path: config.controlSocket, timeoutSeconds: 30)
            guard reply.ok, let status = reply.status else { throw ControlError(reply.message) }
            report = status
        } catch {
            downReason = "\(error)"
            do {
                report = try StatusReport.fromLedger(config: config)
            } catch {
                throw ValidationError("bonesegd is down (\(downReason!)) and its ledger cannot be read: \(error)")
            }
        }
        if json {
            print(try encodeJSON(report))
            return
        }
        print(render(report, downReason: downReason))
    }

    func render(_ r: StatusReport, downReason: String?) -> String {
        var lines = [String]()
        if r.daemon == "down" {
            lines.append("bonesegd: DOWN (state \(r.state)); figures from the ledger")
            if let downReason { lines.append("  control socket: \(downReason)") }
        } else {
            lines.append("bonesegd: \(r.state), pid \(r.pid.map(String.init) ?? "-"), up \(formatDuration(r.uptimeSeconds ?? 0))")
        }
        if let reason = r.degradedReason { lines.append("degraded:  \(reason)") }
        if let release = r.release {
            lines.append("release:   \(release.name) (\(release.engine))" + (release.members.isEmpty ? "" : ", members \(release.members.joined(separator: ", "))"))
        } else {
            lines.append("release:   none active")
        }
        if let q = r.queue { lines.append("queue:     \(q.depth) (inbox \(q.waiting), claimed \(q.queued), processing \(q.active))") }
        lines.append(Table.render(header: ["", "PROCESSED", "FAILED", "QUARANTINED"], rows: [
            ["today", String(r.today.processed), String(r.today.failed), String(r.today.quarantined)],
            ["total", String(r.total.processed), String(r.total.failed), String(r.total.quarantined)],
        ]))
        let l = r.latencyMs
        lines.append(l.count == 0 ? "latency:   no processed jobs yet"
                     : "latency:   p50 \(formatMs(l.p50))  p95 \(formatMs(l.p95))  p99 \(formatMs(l.p99))  (last \(l.count) jobs)")
        if let e = r.lastError {
            let when = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: e.at))
            lines.append("last error: \(when) \(e.input): \(e.error)")
        }
        if let reload = r.lastReload {
            lines.append("last reload: " + (reload.ok ? "ok, serving \(reload.release)" : "FAILED (\(reload.error ?? "")), \(reload.release) keeps serving"))
        }
        if let run = r.lastRetrain {
            lines.append("last retraining: " + RetrainText.when(run) + ", " + RetrainText.outcome(run))
            lines.append("  data: " + RetrainText.data(run))
        } else {
            lines.append("last retraining: none recorded")
        }
        return lines.joined(separator: "\n")
    }
}

/// How a retraining run reads in `status` and `stats`.
enum RetrainText {
    static func timestamp(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    static func dice(_ value: Double?) -> String { value.map { String(format: "%.4f", $0) } ?? "-" }

    static func epochs(_ n: Int) -> String { n == 1 ? "1 epoch" : "\(n) epochs" }

    /// When: "running since T (for D)" or "finished T (took D)".
    static func when(_ r: RetrainRecord) -> String {
        let took = r.durationSeconds.map { formatDuration($0) }
        if r.state == .running {
            return "running since \(timestamp(r.startedAt))" + (took.map { " (\($0))" } ?? "")
        }
        guard let end = r.finishedAt else {
            // Interrupted with no run left to record it (the process was killed): its last sign of life.
            return "started \(timestamp(r.startedAt)), last progress \(timestamp(r.updatedAt ?? r.startedAt))"
        }
        return "finished \(timestamp(end))" + (took.map { " (took \($0))" } ?? "")
    }

    /// What came of it, with the gate's figures.
    static func outcome(_ r: RetrainRecord) -> String {
        let candidate = r.candidateRelease ?? "the candidate"
        switch r.state {
        case .running:
            return "epoch \(r.epochs) done (per seed, \(r.seeds) seed\(r.seeds == 1 ? "" : "s"))"
        case .promoted:
            let champion: String
            if let name = r.championRelease, r.championDice != nil {
                champion = " (champion was \(name), Dice \(dice(r.championDice)))"
            } else if let reason = r.reason {
                // No champion figure to compare (none active, or it could not be scored): say why it was promoted.
                champion = " (\(reason))"
            } else {
                champion = r.championRelease.map { " (champion was \($0))" } ?? " (no release was active)"
            }
            return "promoted \(candidate) with Dice \(dice(r.candidateDice))" + champion
        case .keptChampion:
            let champion = r.championRelease ?? "-"
            // The comparison is printed only when the recorded figures bear it out; otherwise the recorded reason.
            if let d = r.candidateDice, let c = r.championDice, d < c + (r.minGain ?? 0) {
                let gain = r.minGain.map { " + min gain \(String(format: "%.4f", $0))" } ?? ""
                return "kept champion \(champion) (candidate \(candidate) Dice \(dice(d)) < champion \(dice(c))\(gain))"
            }
            return "kept champion \(champion)" + (r.reason.map { " (\($0))" } ?? "")
        case .failed:
            return "failed after \(epochs(r.epochs)): \(r.reason ?? "no reason recorded")"
        case .interrupted:
            return "interrupted after \(epochs(r.epochs))" + (r.reason.map { ": \($0)" } ?? "")
        }
    }

    static func data(_ r: RetrainRecord) -> String {
        "\(r.trainImages) train + \(r.validationImages) validation images, \(r.skippedFiles) file\(r.skippedFiles == 1 ? "" : "s") skipped; from \(r.dataDir)"
    }
}
