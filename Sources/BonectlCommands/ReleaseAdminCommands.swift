import ArgumentParser
import Daemon
import Foundation

/// A release activation refused: the release did not verify, or the daemon would not serve it.
public struct ReleaseActivationError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// Making a release the one bonesegd serves: `bonectl release activate` and `bonectl retrain`'s
/// promotion share this, so both verify, swap and tell the daemon the same way.
public enum ReleaseActivation {
    /// What a running daemon said after the link moved.
    public enum DaemonReply: Sendable, Equatable {
        /// The daemon loaded the release and serves it now (its message).
        case reloaded(String)
        /// No daemon answers on the control socket; it serves the release when it starts.
        case notRunning(String)
    }

    public struct Outcome: Sendable, Equatable {
        public let release: String
        /// The release that was active before (now `<state>/previous`), if any.
        public let previous: String?
        public let daemon: DaemonReply
        public var changed: Bool { previous != release }
    }

    /// Loads the release as the daemon would (members' sha256 checked, one warm-up forward).
    public static func verify(release name: String, config: DaemonConfig) throws {
        do {
            _ = try BonesegdMain.loader(for: config).load(releaseName: name)
        } catch {
            throw ReleaseActivationError(message: "release \(name) is not activated: \(error)")
        }
    }

    /// After the active link moved: a running daemon reloads (and must accept the release).
    public static func tellDaemon(config: DaemonConfig) throws -> DaemonReply {
        let reply: ControlReply
        do {
            reply = try ControlClient.send(ControlRequest(command: "reload"), path: config.controlSocket)
        } catch {
            return .notRunning("bonesegd is not running (\(config.controlSocket)); it serves the new release when it starts")
        }
        guard reply.ok else { throw ReleaseActivationError(message: "the active link moved, but bonesegd refused the release: \(reply.message)") }
        return .reloaded("bonesegd: \(reply.message)")
    }

    /// Verifies `<state>/releases/<release>`, points `<state>/active` at it atomically (the old
    /// target becomes `<state>/previous`) and makes a running bonesegd reload, waiting for the
    /// daemon's answer: on return the daemon serves the release (jobs in flight finish on the
    /// old one; none is dropped). Throws `ReleaseActivationError` (or the links' error) when the
    /// release does not verify (nothing changed) or the daemon refuses it (the link has moved).
    @discardableResult
    public static func activate(release: String, config: DaemonConfig) throws -> Outcome {
        let links = ReleaseLinks(stateDir: config.stateDir)
        let before = links.active()
        try links.activate(release) { try verify(release: $0, config: config) }
        return Outcome(release: release, previous: before, daemon: try tellDaemon(config: config))
    }
}

func printDaemonReply(_ reply: ReleaseActivation.DaemonReply) {
    switch reply {
    case .reloaded(let message), .notRunning(let message): print(message)
    }
}

/// `bonectl release activate NAME`: verify, swap `<state>/active` atomically, tell the daemon.
public struct ReleaseActivate: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "activate",
        abstract: "Verify a release (member sha256, warm-up) and make it the active one; bonesegd reloads.")

    @Argument(help: "Release name (a folder under <state>/releases).") var name: String
    @OptionGroup var daemon: DaemonOptions

    public init() {}

    public func run() throws {
        let config = try daemon.load()
        let outcome: ReleaseActivation.Outcome
        do {
            outcome = try ReleaseActivation.activate(release: name, config: config)
        } catch {
            throw ValidationError("\(error)")
        }
        print("active release: \(name)" + (outcome.previous.map { $0 == name ? " (unchanged)" : " (was \($0))" } ?? ""))
        printDaemonReply(outcome.daemon)
    }
}

/// `bonectl release rollback`: back to the release that was active before.
public struct ReleaseRollback: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Make the previously active release active again; bonesegd reloads.")

    @OptionGroup var daemon: DaemonOptions

    public init() {}

    public func run() throws {
        let config = try daemon.load()
        let links = ReleaseLinks(stateDir: config.stateDir)
        let before = links.active() ?? "none"
        let name: String
        do {
            name = try links.rollback { try ReleaseActivation.verify(release: $0, config: config) }
        } catch {
            throw ValidationError("\(error)")
        }
        print("active release: \(name) (rolled back from \(before))")
        do {
            printDaemonReply(try ReleaseActivation.tellDaemon(config: config))
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

/// `bonectl release prune --keep N`: delete the oldest releases, never the active or previous one.
public struct ReleasePrune: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete the oldest releases beyond N (the active and previous ones are always kept).")

    @Option(help: "How many releases to keep.") var keep: Int
    @OptionGroup var daemon: DaemonOptions

    public init() {}

    public func run() throws {
        let config = try daemon.load()
        let links = ReleaseLinks(stateDir: config.stateDir)
        let removed: [String]
        do {
            removed = try links.prune(keep: keep)
        } catch {
            throw ValidationError("\(error)")
        }
        print(removed.isEmpty ? "nothing to prune (\(links.names().count) releases)" : "removed \(removed.joined(separator: ", "))")
    }
}
