import Foundation
import Testing

/// The shipped unit, sysusers/tmpfiles entries and man pages, checked with the tools that read them.
struct UnitFileTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let hasSystemdAnalyze = FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")
    static let hasMan = FileManager.default.isExecutableFile(atPath: "/usr/bin/man")

    /// The units with ExecStart pointing at the built binaries (verify checks that they exist), in one folder.
    func stagedUnits() throws -> String {
        let dir = "/tmp/bsd-unit-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for name in ["bonesegd.service", "bonesegd-retrain.service", "bonesegd-retrain.timer"] {
            let unit = try String(contentsOfFile: "\(UnitFileTests.repo)/systemd/\(name)", encoding: .utf8)
                .replacingOccurrences(of: "/usr/local/bin/bonesegd", with: Products.bonesegd)
                .replacingOccurrences(of: "/usr/local/bin/bonectl", with: Products.bonectl)
            try unit.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8)
        }
        return dir
    }

    @Test("systemd-analyze verify accepts bonesegd.service, bonesegd-retrain.service and bonesegd-retrain.timer",
          .enabled(if: hasSystemdAnalyze), arguments: ["bonesegd.service", "bonesegd-retrain.service", "bonesegd-retrain.timer"])
    func verify(unit name: String) throws {
        let dir = try stagedUnits()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try runCommand("/usr/bin/systemd-analyze", ["verify", "--man=no", "\(dir)/\(name)"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(!result.stderr.contains("bonesegd"), "\(result.stderr)")
    }

    func exposure(_ unit: String) throws -> Double {
        let result = try runCommand("/usr/bin/systemd-analyze", ["security", "--offline=yes", "--no-pager", unit])
        let line = (result.stdout + result.stderr).split(separator: "\n").first { $0.contains("Overall exposure level") } ?? ""
        let number = line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) }
        return try #require(number, "no exposure in: \(result.stdout)")
    }

    @Test("systemd-analyze security --offline=yes: exposure at most 2.0; the retrain service's no worse than the daemon's",
          .enabled(if: hasSystemdAnalyze))
    func security() throws {
        let dir = try stagedUnits()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let daemon = try exposure("\(dir)/bonesegd.service")
        let retrain = try exposure("\(dir)/bonesegd-retrain.service")
        #expect(daemon <= 2.0, "exposure \(daemon)")
        #expect(retrain <= daemon, "retrain exposure \(retrain) > daemon's \(daemon)")
    }

    /// `Key=value` lines of a unit file's [Service] (or any) section, repeated keys kept in order.
    static func settings(_ file: String) throws -> [(String, String)] {
        try String(contentsOfFile: "\(repo)/systemd/\(file)", encoding: .utf8).split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), !line.hasPrefix("["), let eq = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<eq]), String(line[line.index(after: eq)...]))
        }
    }

    @Test("The retrain service: oneshot bonectl retrain as bonesegd, the daemon's hardening, low weights, a timeout past the budget; the timer nightly")
    func retrainUnits() throws {
        let daemon = try UnitFileTests.settings("bonesegd.service")
        let retrain = try UnitFileTests.settings("bonesegd-retrain.service")
        func value(_ key: String) -> String? { retrain.last { $0.0 == key }?.1 }
        // Every sandboxing setting of the daemon, with the same value (paths the retrain does not need excepted).
        let notHardening: Set = ["Description", "Documentation", "After", "Type", "NotifyAccess", "ExecStart", "ExecReload", "WatchdogSec",
                                 "TimeoutStopSec", "Restart", "RestartSec", "MemoryMax", "TasksMax", "LimitNOFILE", "WantedBy",
                                 "RuntimeDirectory", "RuntimeDirectoryMode", "ReadWritePaths"]
        for (key, setting) in daemon where !notHardening.contains(key) {
            #expect(retrain.contains { $0.0 == key && $0.1 == setting }, "bonesegd-retrain.service lacks \(key)=\(setting)")
        }
        // Writes only to the state dir (ledger, models, releases, train-runs); never owns the daemon's /run folder,
        // which systemd would remove when the oneshot ends.
        #expect(value("ReadWritePaths") == "/var/lib/bonesegd")
        #expect(value("RuntimeDirectory") == nil)
        #expect(value("Type") == "oneshot")
        #expect(value("User") == "bonesegd")
        let exec = try #require(value("ExecStart"))
        let words = exec.split(separator: " ").map(String.init)
        #expect(Array(words.prefix(2)) == ["/usr/local/bin/bonectl", "retrain"])
        func option(_ name: String) -> String? { words.firstIndex(of: name).flatMap { $0 + 1 < words.count ? words[$0 + 1] : nil } }
        #expect(option("--data") == "/var/lib/bonesegd/train")
        #expect(option("--seeds") == "3")
        #expect(words.contains("--json"))
        // The daemon's config file and nothing that could point elsewhere: one state dir for both.
        let daemonExec = try #require(daemon.last { $0.0 == "ExecStart" }?.1).split(separator: " ").map(String.init)
        let daemonConfig = daemonExec.firstIndex(of: "--config").map { daemonExec[$0 + 1] }
        #expect(option("--config") == daemonConfig)
        #expect(option("--state-dir") == nil && option("--socket") == nil)
        func hours(_ text: String?) -> Double? {
            guard let text, let unit = text.last, let n = Double(text.dropLast()) else { return nil }
            return unit == "h" ? n : unit == "m" ? n / 60 : nil
        }
        let budget = try #require(hours(option("--budget")))
        let timeout = try #require(hours(value("TimeoutStartSec")))
        #expect(timeout > budget, "TimeoutStartSec \(timeout) h leaves no time after the \(budget) h budget")
        #expect(Int(value("CPUWeight") ?? "") ?? 100 <= 20 && Int(value("IOWeight") ?? "") ?? 100 <= 20)

        let timer = try UnitFileTests.settings("bonesegd-retrain.timer")
        func timerValue(_ key: String) -> String? { timer.last { $0.0 == key }?.1 }
        #expect(timerValue("Persistent") == "true")
        #expect(timerValue("RandomizedDelaySec") != nil)
        #expect(timerValue("Unit") == "bonesegd-retrain.service")
        #expect(timerValue("WantedBy") == "timers.target")
        if UnitFileTests.hasSystemdAnalyze {
            let calendar = try runCommand("/usr/bin/systemd-analyze", ["calendar", try #require(timerValue("OnCalendar"))])
            #expect(calendar.status == 0 && calendar.stdout.contains("Normalized form: *-*-* 01:30:00"), "\(calendar.stdout)\(calendar.stderr)")
        }
    }

    @Test("make install puts the retrain service (ExecStart rewritten to BINDIR) and the timer beside the daemon's unit")
    func makeInstall() throws {
        let result = try runCommand("/usr/bin/make", ["-n", "-C", UnitFileTests.repo, "install", "PREFIX=/usr", "DESTDIR=/tmp/stage"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("sed 's|/usr/local/bin/bonectl|/usr/bin/bonectl|' systemd/bonesegd-retrain.service > /tmp/stage/usr/lib/systemd/system/bonesegd-retrain.service"),
                "\(result.stdout)")
        #expect(result.stdout.contains("install -m 0644 systemd/bonesegd-retrain.timer /tmp/stage/usr/lib/systemd/system/bonesegd-retrain.timer"))
    }

    @Test("sysusers.d and tmpfiles.d entries parse", .enabled(if: hasSystemdAnalyze))
    func sysusersTmpfiles() throws {
        let root = "/tmp/bsd-root-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: "\(root)/etc", withIntermediateDirectories: true)
        let users = try runCommand("/usr/bin/systemd-sysusers", ["--root", root, "\(UnitFileTests.repo)/systemd/sysusers.d/bonesegd.conf"])
        #expect(users.status == 0, "\(users.stderr)")
        let passwd = (try? String(contentsOfFile: "\(root)/etc/passwd", encoding: .utf8)) ?? ""
        #expect(passwd.contains("bonesegd:x:"), "\(passwd)")
        let tmpfiles = try runCommand("/usr/bin/systemd-tmpfiles", ["--root", root, "--create", "\(UnitFileTests.repo)/systemd/tmpfiles.d/bonesegd.conf"])
        #expect(tmpfiles.status == 0, "\(tmpfiles.stderr)")
        var isDir: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: "\(root)/var/spool/bonesegd/inbox", isDirectory: &isDir) && isDir.boolValue)
        // The labelled-data folder: group members add data, new files keep the group (setgid).
        var info = stat()
        #expect(stat("\(root)/var/lib/bonesegd/train", &info) == 0 && info.st_mode & S_IFMT == S_IFDIR)
        #expect(info.st_mode & 0o7777 == 0o2770, "mode \(String(info.st_mode & 0o7777, radix: 8))")
    }

    @Test("man -l renders each page without warnings", .enabled(if: hasMan), arguments: ["bonesegd.8", "bonectl.8", "bonesegd.conf.5"])
    func manPages(page: String) throws {
        let result = try runCommand("/usr/bin/man", ["--warnings", "-l", "\(UnitFileTests.repo)/man/\(page)"],
                                    environment: ["MANWIDTH": "80", "PATH": "/usr/bin:/bin", "MAN_KEEP_FORMATTING": "0"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n").count > 40)
    }

    @Test("bonectl(8) documents retrain: options, data layout, hygiene, gate, checkpoints, ledger, timer", .enabled(if: hasMan))
    func retrainManPage() throws {
        // Without MAN_KEEP_FORMATTING (any value keeps bold as overstrike) and in the C locale (ASCII hyphens).
        let result = try runCommand("/usr/bin/man", ["-l", "\(UnitFileTests.repo)/man/bonectl.8"],
                                    environment: ["MANWIDTH": "200", "PATH": "/usr/bin:/bin", "LC_ALL": "C"])
        #expect(result.status == 0, "\(result.stderr)")
        let text = result.stdout
        for needle in ["--data DIR", "--seeds N", "--epochs N", "--budget DURATION", "--size N", "--encoder NAME", "--from-active",
                       "--from-scratch", "--min-gain X", "Data layout", "Hygiene", "The gate", "Checkpoints and resume", "train-runs",
                       "Ledger records", "kept-champion", "bonesegd-retrain.timer", "bonesegd-retrain.service", "/var/lib/bonesegd/train",
                       "--retrains", "last_retrain"] {
            #expect(text.contains(needle), "bonectl(8) does not mention \(needle)")
        }
    }
}
