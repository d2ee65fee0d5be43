import ArgumentParser
import Daemon
import Foundation

/// After the active link moved: the daemon reloads if it runs.
func tellDaemonToReload(_ config: DaemonConfig) throws {
    let reply: ControlReply
    do {
        reply = try ControlClient.send(ControlRequest(command: "reload"), path: config.controlSocket)
    } catch {
        print("bonesegd is not running (\(config.controlSocket)); it serves the new release when it starts")
        return
    }
    guard reply.ok else { throw ValidationError("the active link moved, but bonesegd refused the release: \(reply.message)") }
    print("bonesegd: \(reply.message)")
}

/// Loads the release as the daemon would (members' sha256 checked, one warm-up forward).
func verifyRelease(_ name: String, config: DaemonConfig) throws {
    do {
        _ = try BonesegdMain.loader(for: config).load(releaseName: name)
    } catch {
        throw ValidationError("release \(name) is not activated: \(error)")
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
        let links = ReleaseLinks(stateDir: config.stateDir)
        let before = links.active()
        do {
            try links.activate(name) { try verifyRelease($0, config: config) }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("\(error)")
        }
        print("active release: \(name)" + (before.map { $0 == name ? " (unchanged)" : " (was \($0))" } ?? ""))
        try tellDaemonToReload(config)
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
            name = try links.rollback { try verifyRelease($0, config: config) }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("\(error)")
        }
        print("active release: \(name) (rolled back from \(before))")
        try tellDaemonToReload(config)
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
