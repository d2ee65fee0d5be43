import ArgumentParser
import CompetitionFormat
import Daemon
import Foundation

extension Ledger.Grouping: ExpressibleByArgument {}

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Throughput, latency, outcomes and mean class areas from the ledger, per day or per release.")

    @OptionGroup var daemon: DaemonOptions
    @Option(help: "Only jobs finished on or after this date (YYYY-MM-DD, local time, or ISO 8601).") var since: String?
    @Option(help: "Group by day or release.") var by: Ledger.Grouping = .day
    @Flag(help: "Machine-readable output.") var json = false
    @Flag(help: "Show the last 20 retraining runs (bonectl retrain) instead of job statistics; --since filters by start.") var retrains = false

    static func parseDate(_ text: String) throws -> Double {
        let day = DateFormatter()
        day.locale = Locale(identifier: "en_US_POSIX")
        day.dateFormat = "yyyy-MM-dd"
        if let date = day.date(from: text) { return date.timeIntervalSince1970 }
        if let date = ISO8601DateFormatter().date(from: text) { return date.timeIntervalSince1970 }
        throw ValidationError("--since '\(text)' is not a date (YYYY-MM-DD or ISO 8601 such as 2026-11-27T10:00:00Z)")
    }

    func run() throws {
        let config = try daemon.load()
        let sinceTime = try since.map(StatsCommand.parseDate)
        let runLimit = retrains ? 20 : 5
        let groups: [StatsGroup]
        var runs: [RetrainRecord]
        if let reply = try? ControlClient.send(ControlRequest(command: "stats", since: sinceTime, by: by.rawValue, retrains: runLimit),
                                               path: config.controlSocket, timeoutSeconds: 60),
           reply.ok, let stats = reply.stats {
            groups = stats
            runs = reply.retrains ?? []
            // A daemon older than the retrains field: read the runs from the ledger.
            if reply.retrains == nil, let ledger = try? Ledger(path: config.ledgerPath, readOnly: true) {
                runs = (try? ledger.retrains(limit: runLimit, since: sinceTime.map { Date(timeIntervalSince1970: $0) })) ?? []
            }
        } else {
            do {
                let ledger = try Ledger(path: config.ledgerPath, readOnly: true)
                groups = try ledger.stats(since: sinceTime, by: by)
                runs = try ledger.retrains(limit: runLimit, since: sinceTime.map { Date(timeIntervalSince1970: $0) })
            } catch {
                throw ValidationError("bonesegd is down and its ledger cannot be read: \(error)")
            }
        }
        if retrains {
            if json {
                print(try encodeJSON(runs))
            } else if runs.isEmpty {
                print("no retraining runs" + (since.map { " since \($0)" } ?? ""))
            } else {
                print(StatsCommand.retrainTable(runs))
            }
            return
        }
        if json {
            // The job statistics' JSON stays as it was; runs are under --retrains --json.
            print(try encodeJSON(groups))
            return
        }
        defer {
            if !runs.isEmpty {
                print("\nretraining (last \(runs.count) run\(runs.count == 1 ? "" : "s"); bonectl stats --retrains for more):")
                print(StatsCommand.retrainTable(runs))
            }
        }
        if groups.isEmpty {
            print("no finished jobs" + (since.map { " since \($0)" } ?? ""))
            return
        }
        print(Table.render(header: [by == .day ? "DAY" : "RELEASE", "PROCESSED", "FAILED", "QUARANTINED", "PER HOUR", "P50", "P95", "P99"],
                           rows: groups.map { g in
            [g.key, String(g.counts.processed), String(g.counts.failed), String(g.counts.quarantined),
             String(format: "%.1f", g.throughputPerHour), formatMs(g.latencyMs.p50), formatMs(g.latencyMs.p95), formatMs(g.latencyMs.p99)]
        }))
        // Mean mask area per class (pixels): a drift signal between groups.
        let withAreas = groups.filter { !$0.meanClassAreas.isEmpty }
        if !withAreas.isEmpty {
            print("\nmean mask area per class (pixels):")
            let names = withAreas[0].meanClassAreas.count == BoneClasses.count ? BoneClasses.names
                : (0..<withAreas[0].meanClassAreas.count).map { "class-\($0 + 1)" }
            print(Table.render(header: ["CLASS"] + withAreas.map(\.key), rows: names.enumerated().map { i, name in
                [name] + withAreas.map { i < $0.meanClassAreas.count ? String(format: "%.0f", $0.meanClassAreas[i]) : "-" }
            }))
        }
    }

    /// Runs newest first: start (local time), outcome, the gate's releases and Dice, epochs, data, duration.
    static func retrainTable(_ runs: [RetrainRecord]) -> String {
        let local = DateFormatter()
        local.locale = Locale(identifier: "en_US_POSIX")
        local.dateFormat = "yyyy-MM-dd HH:mm"
        return Table.render(header: ["STARTED", "OUTCOME", "CANDIDATE", "DICE", "CHAMPION", "DICE", "EPOCHS", "SEEDS", "TRAIN/VAL/SKIP", "DURATION"],
                            rows: runs.map { r in
            [local.string(from: r.startedAt), r.state.rawValue, r.candidateRelease ?? "-", RetrainText.dice(r.candidateDice),
             r.championRelease ?? "-", RetrainText.dice(r.championDice), String(r.epochs), String(r.seeds),
             "\(r.trainImages)/\(r.validationImages)/\(r.skippedFiles)", r.durationSeconds.map { formatDuration($0) } ?? "-"]
        })
    }
}
