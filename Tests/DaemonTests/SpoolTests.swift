import Daemon
import Foundation
import Imaging
import Testing

/// The real bonesegd binary on real folders.
@Suite(.serialized)
struct SpoolTests {
    /// Checks one valid input's complete output set and its original in done/.
    static func expectComplete(_ h: DaemonHarness, _ relative: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let stem = (relative as NSString).deletingPathExtension
        for suffix in [".csv", ".overlay.png", ".json"] {
            #expect(FileManager.default.fileExists(atPath: "\(h.spool)/outbox/\(stem)\(suffix)"), "missing outbox/\(stem)\(suffix)",
                    sourceLocation: sourceLocation)
        }
        if let csv = FileManager.default.contents(atPath: "\(h.spool)/outbox/\(stem).csv") {
            let lines = String(decoding: csv, as: UTF8.self).split(separator: "\n")
            #expect(lines.count == 30, "\(stem).csv has \(lines.count) lines, want header + 29", sourceLocation: sourceLocation)
        }
        if let overlay = FileManager.default.contents(atPath: "\(h.spool)/outbox/\(stem).overlay.png") {
            #expect((try? PNGCodec.readHeader([UInt8](overlay))) != nil, "\(stem).overlay.png is not a PNG", sourceLocation: sourceLocation)
        }
        #expect(FileManager.default.fileExists(atPath: "\(h.spool)/done/\(relative)"), "\(relative) not in done/", sourceLocation: sourceLocation)
    }

    static func reason(_ h: DaemonHarness, _ relative: String) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: "\(h.spool)/quarantine/\(relative).reason.json") else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    @Test("500 files at once: valid, slow, .part renamed, duplicates, zero-byte, truncated, text, huge header")
    func mixedDrop() throws {
        let h = try DaemonHarness(settle: 1.0)
        try h.startReady()
        var valid = [String]()
        var bad = [String: String]()  // relative → expected fragment of the error

        // Valid PNGs in the root and in patient folders, some in fresh nested trees.
        for i in 0..<400 {
            let folder = i % 4 == 0 ? "" : (i % 4 == 1 ? "ID\(String(format: "%03d", i % 9))/" : "batch\(i % 3)/ID\(i % 5)/deep/")
            let rel = "\(folder)img\(i).png"
            try h.drop(Images.png(seed: i), as: rel)
            valid.append(rel)
        }
        // Duplicates: the same bytes under other names.
        let twin = Images.png(seed: 7)
        for i in 0..<30 {
            let rel = "dup/ID\(i % 3)/twin\(i).png"
            try h.drop(twin, as: rel)
            valid.append(rel)
        }
        // Written as .part, then renamed into place.
        for i in 0..<30 {
            let rel = "ID100/part\(i).png"
            try h.drop(Images.png(seed: 1000 + i), as: rel + ".part")
            #expect(rename("\(h.inbox)/\(rel).part", "\(h.inbox)/\(rel)") == 0)
            valid.append(rel)
        }
        // Bad inputs.
        for i in 0..<10 { try h.drop([], as: "bad/zero\(i).png"); bad["bad/zero\(i).png"] = "empty" }
        for i in 0..<10 {
            let bytes = Images.png(seed: 2000 + i, width: 64, height: 64)
            try h.drop(Array(bytes.prefix(bytes.count / 2)), as: "bad/truncated\(i).png")
            bad["bad/truncated\(i).png"] = "truncated"
        }
        for i in 0..<10 { try h.drop(Array("just some text, not an image \(i)\n".utf8), as: "bad/text\(i).png"); bad["bad/text\(i).png"] = "not a PNG or JPEG" }
        for i in 0..<5 { try h.drop(Images.declaring(width: 100_000, height: 100_000), as: "bad/huge\(i).png"); bad["bad/huge\(i).png"] = "100000x100000" }
        // Ignored names stay where they are.
        try h.drop(Images.png(seed: 5), as: ".hidden.png")
        try h.drop(Images.png(seed: 5), as: "ID001/upload.tmp")
        try h.drop(Images.png(seed: 5), as: "ID001/pending.png.part")

        // Copied slowly in chunks (each chunk well within the settle time).
        let slowCount = 5
        let slowThreads = (0..<slowCount).map { i -> Thread in
            let rel = "slow/ID\(i)/slow\(i).png"
            valid.append(rel)
            let bytes = Images.png(seed: 3000 + i, width: 80, height: 80)
            let path = "\(h.inbox)/\(rel)"
            let thread = Thread {
                try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                let chunk = max(1, bytes.count / 12)
                var offset = 0
                while offset < bytes.count {
                    let n = min(chunk, bytes.count - offset)
                    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, n) }
                    offset += n
                    usleep(60_000)
                }
                close(fd)
            }
            thread.start()
            return thread
        }
        let total = valid.count + bad.count
        #expect(total == 500, "the drop holds \(total) files")
        _ = slowThreads

        let finished = waitUntil(150) {
            h.files(under: "done").count + h.files(under: "quarantine").filter { !$0.hasSuffix(".reason.json") }.count >= total
        }
        #expect(finished, "only \(h.files(under: "done").count) done, \(h.files(under: "quarantine").count) in quarantine; log:\n\(h.log.suffix(3000))")
        #expect(h.process?.isRunning == true, "bonesegd died")

        for rel in valid { SpoolTests.expectComplete(h, rel) }
        let outbox = h.files(under: "outbox")
        #expect(outbox.count == 3 * valid.count, "outbox holds \(outbox.count) files for \(valid.count) inputs")
        #expect(!outbox.contains { $0.hasSuffix(".tmp") })
        for (rel, fragment) in bad {
            #expect(FileManager.default.fileExists(atPath: "\(h.spool)/quarantine/\(rel)"), "\(rel) not quarantined")
            let reason = SpoolTests.reason(h, rel)
            #expect((reason?["error"] as? String)?.contains(fragment) == true, "\(rel): reason \(String(describing: reason))")
            #expect(reason?["attempts"] as? Int == 1)
            #expect(reason?["release"] as? String == "r1")
            #expect(!FileManager.default.fileExists(atPath: "\(h.spool)/outbox/\((rel as NSString).deletingPathExtension).csv"))
        }
        let huge = SpoolTests.reason(h, "bad/huge0.png")?["error"] as? String ?? ""
        #expect(huge.contains("100000"), "the size guard names the declared size: \(huge)")
        // Ignored files untouched.
        for rel in [".hidden.png", "ID001/upload.tmp", "ID001/pending.png.part"] {
            #expect(FileManager.default.fileExists(atPath: "\(h.inbox)/\(rel)"), "\(rel) was taken")
        }
        #expect(h.files(under: "work").isEmpty)

        let status = try h.status()
        #expect(status.daemon == "up")
        #expect(status.state == "running")
        #expect(status.total.processed == valid.count)
        #expect(status.total.quarantined == bad.count)
        #expect(status.total.failed == 0)
        #expect(status.today.processed == valid.count)
        #expect(status.latencyMs.count == valid.count)
        #expect(status.latencyMs.p50 > 0 && status.latencyMs.p50 <= status.latencyMs.p95 && status.latencyMs.p95 <= status.latencyMs.p99)
        #expect(status.release?.name == "r1")
        h.stop()
        #expect(h.process?.terminationStatus == 0)
        // One log line per job with its outcome and time.
        let jobLines = h.log.split(separator: "\n").filter { $0.contains(": succeeded in ") }
        #expect(jobLines.count == valid.count)

        // Down: status answers from the ledger and says so.
        let down = try h.status()
        #expect(down.daemon == "down")
        #expect(down.state == "stopped")
        #expect(down.total.processed == valid.count)
        #expect(down.total.quarantined == bad.count)
    }

    @Test("A forced IN_Q_OVERFLOW leads to a rescan that finds every file")
    func overflowRescan() throws {
        let h = try DaemonHarness(settle: 0.2, rescan: 3600)
        try h.startReady()
        let queueLimit = Int((try? String(contentsOfFile: "/proc/sys/fs/inotify/max_queued_events", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "16384") ?? 16384
        let pid = h.process!.processIdentifier
        // Stop the daemon so its inotify queue fills: each ignored dotfile costs two
        // events (IN_CREATE, IN_CLOSE_WRITE), enough of them overflow the queue.
        // The noise folder exists (and is watched) before the daemon stops.
        let noiseDir = "\(h.inbox)/noise"
        try FileManager.default.createDirectory(atPath: noiseDir, withIntermediateDirectories: true)
        usleep(500_000)
        kill(pid, SIGSTOP)
        usleep(100_000)
        for i in 0..<(queueLimit / 2 + 200) {
            let fd = open("\(noiseDir)/.n\(i)", O_WRONLY | O_CREAT, 0o644)
            close(fd)
        }
        // These arrive after the overflow: their events are lost.
        var valid = [String]()
        for i in 0..<20 {
            let rel = "late/ID\(i % 4)/late\(i).png"
            try h.drop(Images.png(seed: 500 + i), as: rel)
            valid.append(rel)
        }
        kill(pid, SIGCONT)
        let done = waitUntil(60) { h.files(under: "done").count == valid.count }
        #expect(done, "done/ holds \(h.files(under: "done").count) of \(valid.count); log:\n\(h.log.suffix(2000))")
        for rel in valid { SpoolTests.expectComplete(h, rel) }
        let status = try h.status()
        #expect((status.overflows ?? 0) >= 1, "no overflow was seen")
        #expect((status.rescans ?? 0) >= 1)
        #expect(h.log.contains("inotify queue overflowed"))
        h.stop()
    }

    @Test("kill -9 at random moments, 20 times, restarting: nothing lost, no partial or duplicate output, ledger intact")
    func killNine() throws {
        let h = try DaemonHarness(settle: 0.1, maxAttempts: 1000)
        var valid = [String]()
        for i in 0..<90 {
            let rel = i % 2 == 0 ? "ID\(i % 6)/k\(i).png" : "k\(i).png"
            try h.drop(Images.png(seed: 9000 + i, width: 160, height: 160), as: rel)
            valid.append(rel)
        }
        var generator = SystemRandomNumberGenerator()
        var kills = 0
        for _ in 0..<20 {
            try h.start()
            usleep(UInt32.random(in: 80_000...450_000, using: &generator))
            h.kill9()
            kills += 1
        }
        #expect(kills == 20)
        let interruptedBefore = h.files(under: "done").count
        try h.startReady()
        let drained = waitUntil(90) { h.files(under: "done").count == valid.count }
        #expect(drained, "done/ holds \(h.files(under: "done").count) of \(valid.count) (\(interruptedBefore) before the last start)")
        #expect(h.files(under: "work").isEmpty)
        #expect(h.files(under: "quarantine").isEmpty)
        #expect(h.files(under: "inbox").isEmpty)
        for rel in valid { SpoolTests.expectComplete(h, rel) }
        let outbox = h.files(under: "outbox")
        #expect(outbox.count == 3 * valid.count, "outbox holds \(outbox.count) files, want \(3 * valid.count): \(outbox.filter { $0.hasSuffix(".tmp") })")
        // Outputs are byte-identical to a fresh run's (idempotent).
        let processor = IntensityProcessor(release: "r1", maxSide: 4096)
        let sample = valid[17]
        let fresh = try processor.process(imageBytes: Images.png(seed: 9017, width: 160, height: 160), imageName: (sample as NSString).lastPathComponent)
        let stem = (sample as NSString).deletingPathExtension
        #expect([UInt8](FileManager.default.contents(atPath: "\(h.spool)/outbox/\(stem).csv") ?? Data()) == fresh.csv)
        h.stop()

        let ledger = try Ledger(path: "\(h.state)/ledger.sqlite", readOnly: true)
        #expect(try ledger.integrityCheck() == "ok")
        for rel in valid {
            let states = try ledger.states(ofInput: rel)
            #expect(states.filter { $0 == .succeeded }.count == 1, "\(rel): \(states)")
            #expect(!states.contains(.claimed) && !states.contains(.processing), "\(rel): \(states) left open")
        }
        #expect(try ledger.counts(since: nil).processed == valid.count)
    }

    @Test("SIGTERM: the job in progress finishes, unstarted claims go back to the inbox, exit 0; a restart finishes the rest")
    func sigtermReturnsWork() throws {
        let h = try DaemonHarness(settle: 0.05)
        try h.startReady()
        var inputs = [String]()
        for i in 0..<150 {
            let rel = "ID\(i % 5)/t\(i).png"
            try h.drop(Images.png(seed: 100 + i, width: 160, height: 160), as: rel)
            inputs.append(rel)
        }
        #expect(waitUntil(30) { h.files(under: "done").count >= 5 })
        h.stop()
        #expect(h.process?.terminationStatus == 0)
        #expect(h.files(under: "work").isEmpty, "work/ after SIGTERM: \(h.files(under: "work"))")
        let done = Set(h.files(under: "done"))
        let waiting = Set(h.files(under: "inbox"))
        #expect(done.count + waiting.count == inputs.count, "\(done.count) done + \(waiting.count) waiting")
        #expect(!waiting.isEmpty, "everything finished before SIGTERM; the test did not stop the daemon mid-queue")
        for rel in done { SpoolTests.expectComplete(h, rel) }
        #expect(h.log.contains("STOPPING") || h.log.contains("stopping: finishing the jobs in progress"))
        let ledger = try Ledger(path: "\(h.state)/ledger.sqlite", readOnly: true)
        for rel in inputs {
            let states = try ledger.states(ofInput: rel)
            #expect(!states.contains(.claimed) && !states.contains(.processing), "\(rel): \(states)")
        }
        try h.startReady()
        #expect(waitUntil(60) { h.files(under: "done").count == inputs.count })
        for rel in inputs { SpoolTests.expectComplete(h, rel) }
        #expect(try h.status().total.processed == inputs.count)
        h.stop()
    }

    @Test("A claim that cannot happen (work/ on another file system): degraded with the reason, recovers when fixed",
          .enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func claimFailure() throws {
        let h = try DaemonHarness(settle: 0.05)
        try h.startReady()
        let work = "\(h.spool)/work"
        let mounted = try runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", work])
        try #require(mounted.status == 0, "mount failed: \(mounted.stderr)")
        var unmounted = false
        defer { if !unmounted { _ = try? runCommand("/bin/umount", ["-l", work]) } }
        try h.drop(Images.png(seed: 11), as: "ID1/c.png")
        #expect(waitUntil(10) { (try? h.status().state) == "degraded" })
        #expect(try h.status().degradedReason?.contains("cannot claim ID1/c.png") == true)
        #expect(FileManager.default.fileExists(atPath: "\(h.inbox)/ID1/c.png"), "the input left the inbox")
        #expect(h.process?.isRunning == true)
        _ = try runCommand("/bin/umount", [work])
        unmounted = true
        #expect(waitUntil(10) { FileManager.default.fileExists(atPath: "\(h.spool)/done/ID1/c.png") })
        SpoolTests.expectComplete(h, "ID1/c.png")
        #expect(waitUntil(5) { (try? h.status().state) == "running" })
        h.stop()
    }

    @Test("A full outbox: inputs intact, degraded, automatic recovery when space returns",
          .enabled(if: getuid() == 0, "mounting a small tmpfs needs root"))
    func fullOutbox() throws {
        let h = try DaemonHarness(settle: 0.1, retry: 0.2)
        let outbox = "\(h.spool)/outbox"
        try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
        let mounted = try runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", outbox])
        try #require(mounted.status == 0, "mount failed: \(mounted.stderr)")
        defer { _ = try? runCommand("/bin/umount", ["-l", outbox]) }
        // Fill it.
        let filler = "\(outbox)/.filler"
        let fd = open(filler, O_WRONLY | O_CREAT, 0o644)
        let block = [UInt8](repeating: 7, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, 4096) }) > 0 {}
        fsync(fd)
        close(fd)

        try h.startReady()
        var inputs = [String: [UInt8]]()
        for i in 0..<6 {
            let rel = "ID00\(i % 2)/full\(i).png"
            let bytes = Images.png(seed: 700 + i, width: 96, height: 96)
            try h.drop(bytes, as: rel)
            inputs[rel] = bytes
        }
        let degraded = waitUntil(20) { (try? h.status().state) == "degraded" }
        #expect(degraded, "never degraded; log:\n\(h.log.suffix(2000))")
        let status = try h.status()
        #expect(status.degradedReason?.contains("No space left") == true, "\(String(describing: status.degradedReason))")
        usleep(800_000)
        // Nothing lost, nothing quarantined, inputs byte-identical in work/ or inbox/.
        #expect(h.files(under: "quarantine").isEmpty)
        #expect(h.files(under: "done").isEmpty)
        for (rel, bytes) in inputs {
            let data = FileManager.default.contents(atPath: "\(h.spool)/work/\(rel)") ?? FileManager.default.contents(atPath: "\(h.inbox)/\(rel)")
            #expect(data.map { [UInt8]($0) } == bytes, "\(rel) changed or vanished")
        }
        #expect(!h.files(under: "outbox").contains { $0.hasSuffix(".tmp") })
        #expect(h.process?.isRunning == true)

        // Space returns.
        unlink(filler)
        let recovered = waitUntil(30) { h.files(under: "done").count == inputs.count }
        #expect(recovered, "done/ holds \(h.files(under: "done").count); log:\n\(h.log.suffix(2000))")
        for rel in inputs.keys { SpoolTests.expectComplete(h, rel) }
        let after = try h.status()
        #expect(after.state == "running")
        #expect(after.total.processed == inputs.count)
        #expect(after.total.quarantined == 0)
        #expect(after.total.failed >= 1, "the transient failures are in the ledger")
        h.stop()
    }
}
