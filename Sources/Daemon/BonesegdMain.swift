import CSystemd
import Foundation

/// bonesegd's command line: options, config loading and overrides, wiring, exit codes.
public enum BonesegdMain {
    public static let usage = """
    usage: bonesegd [--config FILE] [--state-dir DIR] [--spool-dir DIR] [--check-config]

    Watches the spool's inbox and segments every PNG dropped there (see bonesegd(8)).
      --config FILE     configuration (TOML, bonesegd.conf(5)); default \(DaemonConfig.defaultPath)
      --state-dir DIR   overrides state.dir (ledger, releases, active link)
      --spool-dir DIR   overrides spool.dir (inbox/, work/, outbox/, quarantine/, done/)
      --check-config    validate the configuration, print it, and exit
    """

    /// Parses the arguments and the config file; errors are one line naming the option, file or key.
    public static func configuration(arguments: [String]) throws -> (DaemonConfig, checkOnly: Bool) {
        var configPath = DaemonConfig.defaultPath
        var explicit = false
        var stateDir: String?
        var spoolDir: String?
        var checkOnly = false
        var i = 0
        func value(_ option: String) throws -> String {
            i += 1
            guard i < arguments.count, !arguments[i].isEmpty else { throw ConfigError(file: "command line", key: option, reason: "needs a value") }
            return arguments[i]
        }
        while i < arguments.count {
            let argument = arguments[i]
            switch argument {
            case "--config": configPath = try value(argument); explicit = true
            case "--state-dir": stateDir = try value(argument)
            case "--spool-dir": spoolDir = try value(argument)
            case "--check-config": checkOnly = true
            default:
                throw ConfigError(file: "command line", key: argument, reason: "unknown option (try --help)")
            }
            i += 1
        }
        var config = try DaemonConfig.load(path: configPath, required: explicit)
        if let stateDir { config.stateDir = absolute(stateDir) }
        if let spoolDir { config.spoolDir = absolute(spoolDir) }
        try config.validate(file: configPath + (stateDir != nil || spoolDir != nil ? " (with command-line overrides)" : ""))
        return (config, checkOnly)
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    public static func loader(for config: DaemonConfig) -> any ProcessorLoader {
        switch config.engine {
        case .intensity: return IntensityLoader(releasesDir: config.releasesDir, maxSide: config.maxImageSide)
        case .pipeline: return PipelineLoader(stateDir: config.stateDir, maxSide: config.maxImageSide)
        }
    }

    /// Routes SIGTERM, SIGINT and SIGHUP to the daemon's main loop (a self-pipe) and
    /// ignores SIGPIPE. Call first thing in main.
    public static func prepareSignals() {
        _ = csystemd_install_signal_pipe()
    }

    public static func run(arguments: [String]) -> Int32 {
        if arguments.contains("--help") || arguments.contains("-h") {
            print(usage)
            return 0
        }
        let config: DaemonConfig
        let checkOnly: Bool
        do {
            (config, checkOnly) = try configuration(arguments: arguments)
        } catch {
            FileHandle.standardError.write("<3>bonesegd: \(error)\n".data(using: .utf8)!)
            return 2
        }
        if checkOnly {
            print("configuration ok: spool \(config.spoolDir), state \(config.stateDir), engine \(config.engine.rawValue), control \(config.controlSocket)")
            return 0
        }
        return Daemon(config: config, loader: loader(for: config)).run()
    }
}
