import ArgumentParser

extension Bonectl {
    /// Every bonectl subcommand, in help order. Add a command here when it lands.
    static let subcommandTypes: [ParsableCommand.Type] = [
        EvalCommand.self,
        EnsembleCommand.self,
        SegmentCommand.self,
        ModelCommand.self,
        ReleaseCommand.self,
        BenchCommand.self,
        SynthCommand.self,
        RetrainCommand.self,
        StatusCommand.self,
        StatsCommand.self,
        ReloadCommand.self,
        PauseCommand.self,
        ResumeCommand.self,
    ]
}
