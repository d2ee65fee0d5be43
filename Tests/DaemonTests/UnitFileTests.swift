import Foundation
import Testing

/// The shipped unit, sysusers/tmpfiles entries and man pages, checked with the tools that read them.
struct UnitFileTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let hasSystemdAnalyze = FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")
    static let hasMan = FileManager.default.isExecutableFile(atPath: "/usr/bin/man")

    /// The unit with ExecStart pointing at the built binary (verify checks that it exists).
    func stagedUnit() throws -> String {
        let dir = "/tmp/bsd-unit-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let unit = try String(contentsOfFile: "\(UnitFileTests.repo)/systemd/bonesegd.service", encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/bonesegd", with: Products.bonesegd)
        try unit.write(toFile: "\(dir)/bonesegd.service", atomically: true, encoding: .utf8)
        return "\(dir)/bonesegd.service"
    }

    @Test("systemd-analyze verify accepts bonesegd.service", .enabled(if: hasSystemdAnalyze))
    func verify() throws {
        let unit = try stagedUnit()
        defer { try? FileManager.default.removeItem(atPath: (unit as NSString).deletingLastPathComponent) }
        let result = try runCommand("/usr/bin/systemd-analyze", ["verify", "--man=no", unit])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(!result.stderr.contains("bonesegd.service:"), "\(result.stderr)")
    }

    @Test("systemd-analyze security --offline=yes: exposure at most 2.0", .enabled(if: hasSystemdAnalyze))
    func security() throws {
        let unit = try stagedUnit()
        defer { try? FileManager.default.removeItem(atPath: (unit as NSString).deletingLastPathComponent) }
        let result = try runCommand("/usr/bin/systemd-analyze", ["security", "--offline=yes", "--no-pager", unit])
        let line = (result.stdout + result.stderr).split(separator: "\n").first { $0.contains("Overall exposure level") } ?? ""
        let number = line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) }
        let exposure = try #require(number, "no exposure in: \(result.stdout)")
        #expect(exposure <= 2.0, "exposure \(exposure)")
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
    }

    @Test("man -l renders each page without warnings", .enabled(if: hasMan), arguments: ["bonesegd.8", "bonectl.8", "bonesegd.conf.5"])
    func manPages(page: String) throws {
        let result = try runCommand("/usr/bin/man", ["--warnings", "-l", "\(UnitFileTests.repo)/man/\(page)"],
                                    environment: ["MANWIDTH": "80", "PATH": "/usr/bin:/bin", "MAN_KEEP_FORMATTING": "0"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n").count > 40)
    }
}
