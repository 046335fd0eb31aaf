import ArgumentParser
import Engine
import Foundation

/// `--model PATH`, defaulting to the default model (fetched on first use).
struct ModelOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "GGUF model file (llama or qwen2 architecture). Default: SmolLM2-135M-Instruct Q4_1, fetched on first use.",
        valueName: "path"))
    var model: String?

    func resolvedPath() throws -> String {
        if let model { return model }
        return try fetchDefaultModel()
    }
}

/// Loads the weights, turning a missing file into a message that names the path.
func loadModel(_ path: String) throws -> ModelWeights {
    guard FileManager.default.fileExists(atPath: path) else {
        throw ToolboxError("model file not found: \(path)")
    }
    return try ModelWeights(path: path)
}

struct ToolboxError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
