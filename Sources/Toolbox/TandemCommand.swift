import ArgumentParser

/// `tandem`: the user's toolbox (generate, bench, model).
public struct TandemCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tandem",
        abstract: "LLM inference toolbox: generate text, benchmark, fetch the default model.",
        subcommands: [GenerateCommand.self, BenchCommand.self, ModelCommand.self])

    public init() {}

    /// main.swift's entry point. A plain `TandemCommand.main()` there picks ParsableCommand's
    /// synchronous `main`, which cannot run the asynchronous `bench serve`.
    public static func runMain() async {
        let command: any AsyncParsableCommand.Type = TandemCommand.self
        await command.main()
    }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks: the in-process engine, or a running OpenAI-compatible server.",
        subcommands: [BenchEngineCommand.self, BenchServeCommand.self, BenchKVTransferCommand.self])
}

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Manage models.",
        subcommands: [ModelFetchCommand.self])
}
