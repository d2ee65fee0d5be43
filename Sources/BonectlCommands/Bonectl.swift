import ArgumentParser

/// bonectl: the admin and research CLI of bonesegd.
public struct Bonectl: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bonectl",
        abstract: "Segment hand radiographs, manage models and releases, administer bonesegd.",
        subcommands: Bonectl.subcommandTypes
    )

    public init() {}
}
