import Daemon
import Foundation
import Imaging
import Testing

/// The built products directory (bonesegd and bonectl sit beside the test bundle).
enum Products {
    static var directory: String {
        var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path]
        candidates.append(Bundle.main.bundleURL.path)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: "\($0)/bonesegd") } ?? candidates[0]
    }
    static var bonesegd: String { "\(directory)/bonesegd" }
    static var bonectl: String { "\(directory)/bonectl" }
}

struct CommandResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

func runCommand(_ path: String, _ arguments: [String], environment: [String: String]? = nil) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// Polls until `condition` holds or `timeout` passes; returns whether it held.
func waitUntil(_ timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(50_000)
    }
    return try condition()
}

/// One bonesegd on temporary folders: config, releases, process control, inspection.
final class DaemonHarness {
    let root: String
    var spool: String { "\(root)/spool" }
    var state: String { "\(root)/state" }
    var inbox: String { "\(spool)/inbox" }
    var configPath: String { "\(root)/bonesegd.conf" }
    var socket: String { "\(root)/control.sock" }
    var logPath: String { "\(root)/daemon.log" }
    private(set) var process: Process?

    init(settle: Double = 0.3, rescan: Double = 3600, maxAttempts: Int = 3, retry: Double = 0.2, extra: String = "") throws {
        root = "/tmp/bsd-test-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: "\(state)/releases", withIntermediateDirectories: true)
        try makeRelease("r1")
        symlink("releases/r1", "\(state)/active")
        let config = """
        [spool]
        dir = "\(spool)"
        settle_seconds = \(settle)
        rescan_seconds = \(rescan)
        max_image_side = 4096

        [state]
        dir = "\(state)"

        [release]
        engine = "intensity"

        [processing]
        max_attempts = \(maxAttempts)
        retry_initial_seconds = \(retry)
        retry_max_seconds = 1

        [control]
        socket = "\(socket)"
        group = ""

        [log]
        target = "stderr"
        level = "debug"
        \(extra)
        """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
    }

    /// Rewrites the configuration for the real pipeline engine (models and releases
    /// under `state`), for tests that serve trained or imported weights.
    func usePipelineEngine() throws {
        try """
        [spool]
        dir = "\(spool)"
        settle_seconds = 0.1

        [state]
        dir = "\(state)"

        [control]
        socket = "\(socket)"
        group = ""

        [log]
        target = "stderr"
        level = "debug"
        """.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        _ = try? FileManager.default.removeItem(atPath: root)
    }

    func makeRelease(_ name: String, valid: Bool = true) throws {
        let dir = "\(state)/releases/\(name)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try (valid ? "{\"name\": \"\(name)\"}" : "not json").write(toFile: "\(dir)/release.json", atomically: true, encoding: .utf8)
    }

    @discardableResult
    func start(environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Products.bonesegd)
        process.arguments = ["--config", configPath]
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = nil
        env["WATCHDOG_USEC"] = nil
        env["JOURNAL_STREAM"] = nil
        for (k, v) in environment { env[k] = v }
        process.environment = env
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = FileHandle(forWritingAtPath: logPath)!
        log.seekToEndOfFile()
        process.standardError = log
        process.standardOutput = log
        try process.run()
        self.process = process
        return process
    }

    /// Starts and waits until the control socket answers.
    func startReady(environment: [String: String] = [:]) throws {
        try start(environment: environment)
        let up = waitUntil(20) { (try? ControlClient.send(ControlRequest(command: "status"), path: socket, timeoutSeconds: 2)) != nil }
        #expect(up, "bonesegd did not come up; log:\n\(log.suffix(2000))")
    }

    func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }

    func kill9() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func status() throws -> StatusReport {
        let result = try runCommand(Products.bonectl, ["status", "--json", "--config", configPath])
        guard result.status == 0 else { throw ControlError("bonectl status failed: \(result.stderr)") }
        return try JSONDecoder().decode(StatusReport.self, from: Data(result.stdout.utf8))
    }

    func files(under folder: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: "\(spool)/\(folder)") else { return [] }
        var out = [String]()
        while let item = enumerator.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: "\(spool)/\(folder)/\(item)", isDirectory: &isDir), !isDir.boolValue { out.append(item) }
        }
        return out.sorted()
    }

    /// Writes a file straight into the inbox (open, write, close: one IN_CLOSE_WRITE).
    func drop(_ bytes: [UInt8], as relative: String) throws {
        let path = "\(inbox)/\(relative)"
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}

enum Images {
    /// A small gray radiograph-like PNG whose content depends on `seed`.
    static func png(seed: Int, width: Int = 24, height: Int = 24) -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height {
            for x in 0..<width { pixels[y * width + x] = UInt8((x * 7 + y * 13 + seed * 31) % 256) }
        }
        return try! PNGCodec.encode(pixels: pixels, width: width, height: height, channels: 1)
    }

    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }

    /// A valid PNG whose header declares width × height (with a correct IHDR CRC).
    static func declaring(width: UInt32, height: UInt32) -> [UInt8] {
        var bytes = png(seed: 1)
        func put(_ value: UInt32, at offset: Int) {
            for i in 0..<4 { bytes[offset + i] = UInt8((value >> (24 - 8 * UInt32(i))) & 0xFF) }
        }
        put(width, at: 16)
        put(height, at: 20)
        put(crc32(bytes[12..<29]), at: 29)
        return bytes
    }
}
