import ArgumentParser
import Daemon
import Foundation

/// Sends one command to the running daemon and prints its answer; fails when it refuses.
func sendControl(_ command: String, options: DaemonOptions) throws {
    let config = try options.load()
    let reply: ControlReply
    do {
        reply = try ControlClient.send(ControlRequest(command: command), path: config.controlSocket)
    } catch {
        throw ValidationError("bonesegd is not reachable: \(error)")
    }
    guard reply.ok else { throw ValidationError("bonesegd: \(reply.message)") }
    print(reply.message)
}

struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Make bonesegd load the active release (verified and warmed up before it serves; on failure the old one keeps serving).")

    @OptionGroup var daemon: DaemonOptions

    func run() throws { try sendControl("reload", options: daemon) }
}
