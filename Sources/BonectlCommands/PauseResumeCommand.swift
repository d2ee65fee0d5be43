import ArgumentParser
import Daemon
import Foundation

struct PauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause",
        abstract: "Stop claiming and starting jobs (jobs in progress finish; files wait in the inbox).")

    @OptionGroup var daemon: DaemonOptions

    func run() throws { try sendControl("pause", options: daemon) }
}

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Resume claiming and processing after `bonectl pause`.")

    @OptionGroup var daemon: DaemonOptions

    func run() throws { try sendControl("resume", options: daemon) }
}
