import ArgumentParser

/// `tandem`: the user's toolbox (generate, bench, model).
public struct TandemCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tandem",
        abstract: "LLM inference toolbox: generate text, benchmark, fetch the default model.",
        subcommands: [GenerateCommand.self, BenchCommand.self, ModelCommand.self])

    public init() {}
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks.",
        subcommands: [BenchEngineCommand.self])
}

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Manage models.",
        subcommands: [ModelFetchCommand.self])
}
