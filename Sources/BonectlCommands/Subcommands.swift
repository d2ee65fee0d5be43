import ArgumentParser

extension Bonectl {
    /// Every bonectl subcommand, in help order. Add a command here when it lands.
    static let subcommandTypes: [ParsableCommand.Type] = [
        SynthCommand.self,
        EvalCommand.self,
        EnsembleCommand.self,
    ]
}
