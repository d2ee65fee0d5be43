import Daemon
import Foundation
import Testing

@Suite(.serialized)
struct RetentionAndAccessTests {
    @Test("retention.done = delete: originals are removed after their outputs are durable")
    func deleteAfterSuccess() throws {
        let h = try DaemonHarness(settle: 0.1, extra: "\n[retention]\ndone = \"delete\"\n")
        try h.startReady()
        for i in 0..<5 { try h.drop(Images.png(seed: 80 + i), as: "ID9/d\(i).png") }
        try h.drop(Array("text".utf8), as: "ID9/bad.png")
        #expect(waitUntil(20) { h.files(under: "outbox").count == 15 && h.files(under: "quarantine").count == 2 })
        #expect(waitUntil(5) { h.files(under: "work").isEmpty && h.files(under: "inbox").isEmpty })
        #expect(h.files(under: "done").isEmpty)
        // Quarantine keeps the bad input whatever the retention.
        #expect(FileManager.default.fileExists(atPath: "\(h.spool)/quarantine/ID9/bad.png"))
        #expect(try h.status().total.processed == 5)
        h.stop()
    }

    @Test("retention.keep_days: originals older than N days leave done/")
    func keepDays() throws {
        let h = try DaemonHarness()
        let spool = Spool(config: {
            var c = DaemonConfig()
            c.spoolDir = h.spool
            return c
        }())
        try spool.create()
        try FileManager.default.createDirectory(atPath: "\(h.spool)/done/ID1", withIntermediateDirectories: true)
        for i in 0..<3 { try Data([1, 2, 3]).write(to: URL(fileURLWithPath: "\(h.spool)/done/ID1/x\(i).png")) }
        #expect(spool.expireDone(olderThanDays: 2, now: Date()) == 0)
        #expect(spool.expireDone(olderThanDays: 0, now: Date().addingTimeInterval(30 * 86400)) == 0, "0 keeps forever")
        #expect(spool.expireDone(olderThanDays: 2, now: Date().addingTimeInterval(3 * 86400)) == 3)
        #expect(h.files(under: "done").isEmpty)
    }

    @Test("Control socket: a peer that is not root, the daemon's user or in its group is refused (SO_PEERCRED)",
          .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs root to act as another user"))
    func peerCredentials() throws {
        // Mode 0666 so the file permission does not stop the stranger: the credential check must.
        let h = try DaemonHarness(extra: "")
        let config = try String(contentsOfFile: h.configPath, encoding: .utf8)
            .replacingOccurrences(of: "group = \"\"", with: "group = \"\"\nmode = \"0666\"")
        try config.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        try h.startReady()
        var info = stat()
        #expect(stat(h.socket, &info) == 0 && info.st_mode & 0o777 == 0o666)
        chmod(h.root, 0o755)
        chmod(h.configPath, 0o644)
        let stranger = try runCommand("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                            Products.bonectl, "pause", "--config", h.configPath])
        #expect(stranger.status != 0)
        #expect(stranger.stderr.contains("permission denied"), "\(stranger.stderr)")
        #expect(try h.status().state == "running", "a refused peer paused the daemon")
        #expect(h.log.contains("control socket: refused pid"))
        // A member of the socket's group (supplementary, via SO_PEERGROUPS) is let in.
        let member = try runCommand("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--groups=\(getegid())",
                                                          Products.bonectl, "pause", "--config", h.configPath])
        #expect(member.status == 0, "\(member.stderr)")
        #expect(try h.status().state == "paused")
        h.stop()
    }
}
