import Foundation
import TOMLKit

/// A configuration the daemon refuses: names the file, the key and the reason.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let key: String?
    public let reason: String
    public init(file: String, key: String?, reason: String) {
        self.file = file
        self.key = key
        self.reason = reason
    }
    public var description: String {
        if let key { return "\(file): key \(key): \(reason)" }
        return "\(file): \(reason)"
    }
}

/// What happens to an input after its outputs are written.
public enum DoneRetention: String, Sendable, Codable {
    /// Keep the original in done/ for `keepDays` days (0 = forever).
    case keep
    /// Delete the original as soon as its outputs and ledger row are durable.
    case delete
}

/// Which processor turns an image into outputs.
public enum ProcessingEngine: String, Sendable, Codable {
    /// The UNet++ ensemble of the active release (Segmentation.SegmentationPipeline).
    case pipeline
    /// A deterministic intensity-band segmenter with no model: for exercising the spool
    /// (tests, smoke checks of an installation) without weights.
    case intensity
}

public enum LogTarget: String, Sendable, Codable { case auto, journal, stderr }

/// The daemon's settings: /etc/bonesegd/bonesegd.conf (TOML), every key in bonesegd.conf(5).
public struct DaemonConfig: Sendable, Equatable {
    public static let defaultPath = "/etc/bonesegd/bonesegd.conf"

    // [spool]
    public var spoolDir = "/var/spool/bonesegd"
    public var settleSeconds = 2.0
    public var rescanSeconds = 60.0
    public var maxInputBytes = 256 << 20
    public var maxImageSide = 8192
    // [retention]
    public var retention = DoneRetention.keep
    public var keepDays = 30
    // [state]
    public var stateDir = "/var/lib/bonesegd"
    // [release]
    public var engine = ProcessingEngine.pipeline
    /// A release to serve by name; empty: follow the `<state>/active` symlink.
    public var releaseName = ""
    // [processing]
    public var workers = 1
    public var maxAttempts = 3
    public var retryInitialSeconds = 1.0
    public var retryMaxSeconds = 60.0
    // [control]
    public var controlSocket = "/run/bonesegd/control.sock"
    public var controlGroup = "bonesegd"
    public var controlMode: UInt32 = 0o660
    // [log]
    public var logTarget = LogTarget.auto
    public var logLevel = 6

    public init() {}

    public var inboxDir: String { spoolDir + "/inbox" }
    public var workDir: String { spoolDir + "/work" }
    public var outboxDir: String { spoolDir + "/outbox" }
    public var quarantineDir: String { spoolDir + "/quarantine" }
    public var doneDir: String { spoolDir + "/done" }
    public var ledgerPath: String { stateDir + "/ledger.sqlite" }
    public var releasesDir: String { stateDir + "/releases" }
    public var activeLink: String { stateDir + "/active" }

    static let levels = ["emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7]

    /// Every key the file may hold, section → keys. Anything else is refused.
    public static let knownKeys: [String: Set<String>] = [
        "spool": ["dir", "settle_seconds", "rescan_seconds", "max_input_bytes", "max_image_side"],
        "retention": ["done", "keep_days"],
        "state": ["dir"],
        "release": ["engine", "name"],
        "processing": ["workers", "max_attempts", "retry_initial_seconds", "retry_max_seconds"],
        "control": ["socket", "group", "mode"],
        "log": ["target", "level"],
    ]

    /// Reads the file; a missing file at the default path means defaults, a missing
    /// file named with --config is an error.
    public static func load(path: String, required: Bool) throws -> DaemonConfig {
        guard FileManager.default.fileExists(atPath: path) else {
            if required { throw ConfigError(file: path, key: nil, reason: "no such file") }
            return DaemonConfig()
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, key: nil, reason: "cannot be read as UTF-8 text")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> DaemonConfig {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(file: "\(file):\(error.source.begin.line)", key: nil, reason: "TOML syntax: \(error.description)")
        }
        var config = DaemonConfig()
        for section in table.keys {
            guard let keys = knownKeys[section] else {
                throw ConfigError(file: file, key: section, reason: "unknown section (known: \(knownKeys.keys.sorted().joined(separator: ", ")))")
            }
            guard let sub = table[section]?.table else {
                throw ConfigError(file: file, key: section, reason: "must be a table ([\(section)])")
            }
            for key in sub.keys where !keys.contains(key) {
                throw ConfigError(file: file, key: "\(section).\(key)", reason: "unknown key (known in [\(section)]: \(keys.sorted().joined(separator: ", ")))")
            }
            let reader = KeyReader(table: sub, section: section, file: file)
            try config.apply(section: section, reader)
        }
        try config.validate(file: file)
        return config
    }

    mutating func apply(section: String, _ r: KeyReader) throws {
        switch section {
        case "spool":
            if let v = try r.string("dir") { spoolDir = v }
            if let v = try r.number("settle_seconds") { settleSeconds = v }
            if let v = try r.number("rescan_seconds") { rescanSeconds = v }
            if let v = try r.int("max_input_bytes") { maxInputBytes = v }
            if let v = try r.int("max_image_side") { maxImageSide = v }
        case "retention":
            if let v = try r.string("done") {
                guard let value = DoneRetention(rawValue: v) else { throw r.error("done", "must be \"keep\" or \"delete\", not \"\(v)\"") }
                retention = value
            }
            if let v = try r.int("keep_days") { keepDays = v }
        case "state":
            if let v = try r.string("dir") { stateDir = v }
        case "release":
            if let v = try r.string("engine") {
                guard let value = ProcessingEngine(rawValue: v) else { throw r.error("engine", "must be \"pipeline\" or \"intensity\", not \"\(v)\"") }
                engine = value
            }
            if let v = try r.string("name") { releaseName = v }
        case "processing":
            if let v = try r.int("workers") { workers = v }
            if let v = try r.int("max_attempts") { maxAttempts = v }
            if let v = try r.number("retry_initial_seconds") { retryInitialSeconds = v }
            if let v = try r.number("retry_max_seconds") { retryMaxSeconds = v }
        case "control":
            if let v = try r.string("socket") { controlSocket = v }
            if let v = try r.string("group") { controlGroup = v }
            if let v = try r.string("mode") {
                guard let mode = UInt32(v, radix: 8), mode <= 0o777 else { throw r.error("mode", "must be an octal permission string such as \"0660\", not \"\(v)\"") }
                controlMode = mode
            }
        case "log":
            if let v = try r.string("target") {
                guard let value = LogTarget(rawValue: v) else { throw r.error("target", "must be \"auto\", \"journal\" or \"stderr\", not \"\(v)\"") }
                logTarget = value
            }
            if let v = try r.string("level") {
                guard let value = DaemonConfig.levels[v] else {
                    throw r.error("level", "must be one of \(DaemonConfig.levels.sorted { $0.value < $1.value }.map(\.key).joined(separator: ", ")), not \"\(v)\"")
                }
                logLevel = value
            }
        default:
            break
        }
    }

    /// Range and consistency checks; also run after command-line overrides.
    public func validate(file: String) throws {
        func fail(_ key: String, _ reason: String) -> ConfigError { ConfigError(file: file, key: key, reason: reason) }
        if !spoolDir.hasPrefix("/") { throw fail("spool.dir", "must be an absolute path, not \"\(spoolDir)\"") }
        if !stateDir.hasPrefix("/") { throw fail("state.dir", "must be an absolute path, not \"\(stateDir)\"") }
        if !controlSocket.hasPrefix("/") { throw fail("control.socket", "must be an absolute path, not \"\(controlSocket)\"") }
        if controlSocket.utf8.count >= 108 { throw fail("control.socket", "path is longer than a Unix socket address allows (107 bytes)") }
        if !(settleSeconds >= 0 && settleSeconds <= 3600) { throw fail("spool.settle_seconds", "must be between 0 and 3600, not \(settleSeconds)") }
        if !(rescanSeconds >= 1 && rescanSeconds <= 86400) { throw fail("spool.rescan_seconds", "must be between 1 and 86400, not \(rescanSeconds)") }
        if maxInputBytes < 1 { throw fail("spool.max_input_bytes", "must be positive, not \(maxInputBytes)") }
        if maxImageSide < 16 || maxImageSide > 65536 { throw fail("spool.max_image_side", "must be between 16 and 65536, not \(maxImageSide)") }
        if keepDays < 0 { throw fail("retention.keep_days", "must be 0 (forever) or more, not \(keepDays)") }
        if workers < 1 || workers > 64 { throw fail("processing.workers", "must be between 1 and 64, not \(workers)") }
        if maxAttempts < 1 { throw fail("processing.max_attempts", "must be at least 1, not \(maxAttempts)") }
        if !(retryInitialSeconds > 0) { throw fail("processing.retry_initial_seconds", "must be positive, not \(retryInitialSeconds)") }
        if !(retryMaxSeconds >= retryInitialSeconds) {
            throw fail("processing.retry_max_seconds", "must be at least retry_initial_seconds (\(retryInitialSeconds)), not \(retryMaxSeconds)")
        }
        if releaseName.contains("/") || releaseName == "." || releaseName == ".." { throw fail("release.name", "must be a plain release name, not \"\(releaseName)\"") }
        let spool = URL(fileURLWithPath: spoolDir).standardized.path
        let state = URL(fileURLWithPath: stateDir).standardized.path
        if spool == state { throw fail("state.dir", "must differ from spool.dir (\(spoolDir))") }
    }
}

/// Typed reads of one section's keys, with errors that name the key.
struct KeyReader {
    let table: TOMLTable
    let section: String
    let file: String

    func error(_ key: String, _ reason: String) -> ConfigError { ConfigError(file: file, key: "\(section).\(key)", reason: reason) }

    func string(_ key: String) throws -> String? {
        guard let value = table[key] else { return nil }
        guard let s = value.string else { throw error(key, "must be a string, not a \(value.type)") }
        return s
    }

    func int(_ key: String) throws -> Int? {
        guard let value = table[key] else { return nil }
        guard let i = value.int else { throw error(key, "must be an integer, not a \(value.type)") }
        return i
    }

    func number(_ key: String) throws -> Double? {
        guard let value = table[key] else { return nil }
        if let d = value.double { return d }
        if let i = value.int { return Double(i) }
        throw error(key, "must be a number, not a \(value.type)")
    }
}
