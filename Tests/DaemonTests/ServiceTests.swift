import BonectlCommands
import Daemon
import Foundation
import Testing

/// A NOTIFY_SOCKET listener: an AF_UNIX datagram socket, as systemd's.
final class NotifyListener {
    let path: String
    let fd: Int32
    private(set) var messages: [String] = []

    init(path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw ControlError("bind \(path): \(String(cString: strerror(errno)))") }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Reads datagrams until one contains `needle` or the time runs out.
    func waitFor(_ needle: String, timeout: Double) -> Bool {
        if messages.contains(where: { $0.contains(needle) }) { return true }
        return readUntil(timeout: timeout) { $0.contains(needle) }
    }

    /// Reads datagrams until one satisfies `stop` or the time runs out.
    func readUntil(timeout: Double, stop: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 8192)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                let message = String(decoding: buffer[0..<n], as: UTF8.self)
                messages.append(message)
                if stop(message) { return true }
            }
        }
        return false
    }
}

@Suite(.serialized)
struct ServiceTests {
    @Test("NOTIFY_SOCKET sees READY=1, STATUS=, WATCHDOG=1, RELOADING=1 + MONOTONIC_USEC, READY=1, STOPPING=1; exit 0")
    func notifyProtocol() throws {
        let h = try DaemonHarness(settle: 0.1)
        let listener = try NotifyListener(path: "\(h.root)/notify.sock")
        try h.start(environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "400000"])
        #expect(listener.waitFor("READY=1", timeout: 20), "messages: \(listener.messages)")
        #expect(listener.messages.first { $0.contains("READY=1") }?.contains("STATUS=running; release r1") == true)
        // The watch is set when READY=1 arrives: a file dropped now is processed.
        try h.drop(Images.png(seed: 3), as: "ID1/ready.png")
        #expect(listener.waitFor("WATCHDOG=1", timeout: 5), "messages: \(listener.messages)")
        #expect(waitUntil(20) { FileManager.default.fileExists(atPath: "\(h.spool)/done/ID1/ready.png") })
        let watchdogs = listener.messages.filter { $0 == "WATCHDOG=1" }.count
        #expect(listener.waitFor("STATUS=", timeout: 1))

        kill(h.process!.processIdentifier, SIGHUP)
        #expect(listener.waitFor("RELOADING=1", timeout: 10), "messages: \(listener.messages)")
        let reloading = listener.messages.first { $0.contains("RELOADING=1") } ?? ""
        let usec = reloading.split(separator: "\n").first { $0.hasPrefix("MONOTONIC_USEC=") }.flatMap { UInt64($0.dropFirst("MONOTONIC_USEC=".count)) }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nowUsec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        #expect(usec != nil && usec! <= nowUsec && nowUsec - usec! < 30_000_000, "MONOTONIC_USEC in \(reloading)")
        #expect(listener.readUntil(timeout: 10) { $0.contains("READY=1") }, "no READY=1 after reload: \(listener.messages)")
        #expect(listener.messages.filter { $0.contains("READY=1") }.count == 2)
        // Keep-alives continue at half WATCHDOG_USEC.
        usleep(600_000)
        _ = listener.readUntil(timeout: 0.3) { _ in false }
        #expect(listener.messages.filter { $0 == "WATCHDOG=1" }.count > watchdogs)

        kill(h.process!.processIdentifier, SIGTERM)
        #expect(listener.waitFor("STOPPING=1", timeout: 10), "messages: \(listener.messages)")
        h.process!.waitUntilExit()
        #expect(h.process!.terminationStatus == 0)
    }

    @Test("Release switch under load: zero failed jobs, every output names its release; a broken release is refused")
    func releaseSwitch() throws {
        let h = try DaemonHarness(settle: 0.1)
        try h.makeRelease("r2")
        try h.makeRelease("broken", valid: false)
        try h.startReady()
        var inputs = [String]()
        for i in 0..<120 {
            let rel = "ID\(i % 3)/s\(i).png"
            try h.drop(Images.png(seed: 4000 + i, width: 96, height: 96), as: rel)
            inputs.append(rel)
        }
        #expect(waitUntil(20) { h.files(under: "done").count >= 10 })
        // Activate r2 while jobs run (the command bonectl runs: verify, swap the link, tell the daemon).
        let activate = try ReleaseActivate.parse(["r2", "--config", h.configPath])
        try activate.run()
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: "\(h.state)/active")
        #expect(link == "releases/r2")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(h.state)/previous") == "releases/r1")
        // A broken release is refused before the link moves; r2 keeps serving.
        let broken = try ReleaseActivate.parse(["broken", "--config", h.configPath])
        #expect(throws: (any Error).self) { try broken.run() }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(h.state)/active") == "releases/r2")

        #expect(waitUntil(60) { h.files(under: "done").count == inputs.count }, "done/ holds \(h.files(under: "done").count)")
        var byRelease = [String: Int]()
        for rel in inputs {
            let stem = (rel as NSString).deletingPathExtension
            let data = FileManager.default.contents(atPath: "\(h.spool)/outbox/\(stem).json") ?? Data()
            let release = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["release"] as? String ?? "none"
            byRelease[release, default: 0] += 1
        }
        #expect(byRelease["r1", default: 0] >= 10, "\(byRelease)")
        #expect(byRelease["r2", default: 0] >= 1, "\(byRelease)")
        #expect(byRelease["r1", default: 0] + byRelease["r2", default: 0] == inputs.count, "\(byRelease)")
        let status = try h.status()
        #expect(status.total.failed == 0)
        #expect(status.total.quarantined == 0)
        #expect(status.release?.name == "r2")
        #expect(status.lastReload?.ok == true)

        // The active release breaks on disk; a reload fails and the loaded one keeps serving.
        try "garbage".write(toFile: "\(h.state)/releases/r2/release.json", atomically: true, encoding: .utf8)
        let reload = try runCommand(Products.bonectl, ["reload", "--config", h.configPath])
        #expect(reload.status != 0)
        #expect(reload.stderr.contains("r2 keeps serving"), "\(reload.stderr)")
        let afterFailedReload = try h.status()
        #expect(afterFailedReload.release?.name == "r2")
        #expect(afterFailedReload.lastReload?.ok == false)
        try "{}".write(toFile: "\(h.state)/releases/r2/release.json", atomically: true, encoding: .utf8)

        // Stats per release agree with the outputs.
        let stats = try runCommand(Products.bonectl, ["stats", "--by", "release", "--json", "--config", h.configPath])
        #expect(stats.status == 0, "\(stats.stderr)")
        let groups = try JSONDecoder().decode([StatsGroup].self, from: Data(stats.stdout.utf8))
        #expect(groups.first { $0.key == "r1" }?.counts.processed == byRelease["r1"])
        #expect(groups.first { $0.key == "r2" }?.counts.processed == byRelease["r2"])
        #expect(groups.allSatisfy { $0.meanClassAreas.count == 29 })

        // pause / resume through bonectl.
        #expect(try runCommand(Products.bonectl, ["pause", "--config", h.configPath]).status == 0)
        #expect(try h.status().state == "paused")
        try h.drop(Images.png(seed: 1), as: "while-paused.png")
        usleep(600_000)
        #expect(FileManager.default.fileExists(atPath: "\(h.inbox)/while-paused.png"), "a paused daemon claimed a file")
        #expect(try runCommand(Products.bonectl, ["resume", "--config", h.configPath]).status == 0)
        #expect(waitUntil(10) { FileManager.default.fileExists(atPath: "\(h.spool)/done/while-paused.png") })
        h.stop()

        // Rollback and prune work on the links alone.
        let rollback = try ReleaseRollback.parse(["--config", h.configPath])
        try rollback.run()
        #expect(ReleaseLinks(stateDir: h.state).active() == "r1")
        #expect(ReleaseLinks(stateDir: h.state).previous() == "r2")
        let prune = try ReleasePrune.parse(["--keep", "2", "--config", h.configPath])
        try prune.run()
        #expect(Set(ReleaseLinks(stateDir: h.state).names()) == ["r1", "r2"])
    }

    @Test("The production engine: a release of a real UNet++ (small, random weights) made with bonectl, activated, served")
    func pipelineEngine() throws {
        let h = try DaemonHarness(settle: 0.1, extra: "")
        // The harness's config uses the intensity engine; this one serves the pipeline.
        let config = try String(contentsOfFile: h.configPath, encoding: .utf8).replacingOccurrences(of: "engine = \"intensity\"", with: "engine = \"pipeline\"")
        try config.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        let models = "\(h.state)/models"
        let weights = "\(h.root)/w.safetensors"
        for arguments in [
            ["model", "random-weights", "--encoder", "resnet18", "--decoder-channels", "32,16,8,8,4", "--out", weights],
            ["model", "import", weights, "--name", "tiny", "--encoder", "resnet18", "--input-size", "64", "--decoder-channels", "32,16,8,8,4", "--store", models],
            ["release", "create", "tiny-rel", "--members", "tiny", "--store", models],
        ] {
            let result = try runCommand(Products.bonectl, arguments)
            try #require(result.status == 0, "bonectl \(arguments.joined(separator: " ")): \(result.stderr)")
        }
        // Activation verifies the release the way the daemon loads it.
        let activate = try ReleaseActivate.parse(["tiny-rel", "--config", h.configPath])
        try activate.run()
        #expect(ReleaseLinks(stateDir: h.state).active() == "tiny-rel")
        // A member whose weights changed after the release was made is refused.
        try h.makeRelease("tampered")
        try FileManager.default.removeItem(atPath: "\(h.state)/releases/tampered")
        try FileManager.default.copyItem(atPath: "\(h.state)/releases/tiny-rel", toPath: "\(h.state)/releases/tampered")
        let manifest = "\(h.state)/releases/tampered/release.json"
        let text = try String(contentsOfFile: manifest, encoding: .utf8)
        let sha = try #require(text.range(of: "[0-9a-f]{64}", options: .regularExpression))
        try text.replacingCharacters(in: sha, with: String(repeating: "0", count: 64)).write(toFile: manifest, atomically: true, encoding: .utf8)
        let tampered = try ReleaseActivate.parse(["tampered", "--config", h.configPath])
        #expect(throws: (any Error).self) { try tampered.run() }
        #expect(ReleaseLinks(stateDir: h.state).active() == "tiny-rel")

        try h.startReady()
        for i in 0..<3 { try h.drop(Images.png(seed: 60 + i, width: 96, height: 80), as: "ID007/p\(i).png") }
        try h.drop(Array("not an image".utf8), as: "ID007/bad.png")
        #expect(waitUntil(120) { h.files(under: "done").count == 3 && h.files(under: "quarantine").count == 2 },
                "log:\n\(h.log.suffix(2000))")
        for i in 0..<3 {
            SpoolTests.expectComplete(h, "ID007/p\(i).png")
            let data = FileManager.default.contents(atPath: "\(h.spool)/outbox/ID007/p\(i).json") ?? Data()
            let sidecar = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            #expect(sidecar?["release"] as? String == "tiny-rel")
        }
        let status = try h.status()
        #expect(status.release?.name == "tiny-rel")
        #expect(status.release?.members == ["tiny"])
        #expect(status.release?.engine == "pipeline")
        #expect(status.total.processed == 3 && status.total.quarantined == 1)
        h.stop()
    }

    @Test("A bad config is refused at start with the key and the reason")
    func badConfig() throws {
        let h = try DaemonHarness()
        let cases: [(String, String)] = [
            ("[spool]\nsettle_seconds = -1\n", "spool.settle_seconds"),
            ("[spool]\nsettle_secs = 1\n", "spool.settle_secs: unknown key"),
            ("[processing]\nworkers = \"two\"\n", "processing.workers: must be an integer"),
            ("[release]\nengine = \"magic\"\n", "release.engine"),
            ("[spool\n", "TOML syntax"),
            ("[nonsense]\nx = 1\n", "nonsense: unknown section"),
        ]
        for (text, expected) in cases {
            let path = "\(h.root)/bad.conf"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let result = try runCommand(Products.bonesegd, ["--config", path])
            #expect(result.status == 2, "\(text) was accepted")
            #expect(result.stderr.contains(expected) && result.stderr.contains(path), "\(text): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "one line: \(result.stderr)")
        }
        let missing = try runCommand(Products.bonesegd, ["--config", "\(h.root)/absent.conf"])
        #expect(missing.status == 2 && missing.stderr.contains("absent.conf: no such file"))
        // Overrides apply and are validated.
        let check = try runCommand(Products.bonesegd, ["--config", h.configPath, "--spool-dir", "/srv/spool", "--state-dir", "/srv/state", "--check-config"])
        #expect(check.status == 0)
        #expect(check.stdout.contains("spool /srv/spool") && check.stdout.contains("state /srv/state"), "\(check.stdout)")
        // The shipped etc/bonesegd.conf parses and equals the built-in defaults.
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("etc/bonesegd.conf").path
        let text = try String(contentsOfFile: shipped, encoding: .utf8)
        #expect(try DaemonConfig.parse(text, file: shipped) == DaemonConfig())
    }

    @Test("No release to serve: refused at start with what to do")
    func noRelease() throws {
        let h = try DaemonHarness()
        unlink("\(h.state)/active")
        let result = try runCommand(Products.bonesegd, ["--config", h.configPath])
        #expect(result.status == 1)
        #expect(result.stderr.contains("bonectl release activate"), "\(result.stderr)")
    }
}
