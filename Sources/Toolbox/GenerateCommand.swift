import ArgumentParser
import Engine
import EngineOptions
import Foundation
import Tokenization

/// `tandem generate`: one prompt, completion text on stdout, everything else on stderr.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate a completion for one prompt; prints only the completion on stdout.")

    @OptionGroup var model: ModelOption
    @OptionGroup var kernels: CPUKernelsOption

    @Option(help: "The prompt text.")
    var prompt: String

    @Flag(help: "Render the prompt as a user message through the chat template.")
    var chat = false

    @Option(help: "System message (with --chat).")
    var system: String?

    @Option(help: ArgumentHelp("Jinja chat template file overriding the model's (with --chat).", valueName: "file"))
    var chatTemplate: String?

    @Option(help: "Most tokens to generate.")
    var maxTokens = 256

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(help: "Keep only the k most likely tokens; 0 keeps all.")
    var topK = 0

    @Option(help: "Nucleus sampling: keep the most likely tokens up to this probability mass.")
    var topP: Float = 1

    @Option(help: "Drop tokens less likely than this fraction of the most likely one.")
    var minP: Float = 0

    @Option(help: "Random seed for reproducible sampling.")
    var seed: UInt64?

    @Option(help: "Compute threads.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "Print prompt and speed figures on stderr.")
    var verbose = false

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if system != nil && !chat { throw ValidationError("--system needs --chat") }
        if chatTemplate != nil && !chat { throw ValidationError("--chat-template needs --chat") }
        do {
            try sampling.validate()
        } catch {
            throw ValidationError("\(error)")
        }
    }

    var sampling: SamplingParameters {
        SamplingParameters(temperature: temperature, topK: topK, topP: topP, minP: minP, seed: seed)
    }

    func run() throws {
        // An unsupported template file is an error before the model loads.
        let overrideTemplate = try chatTemplate.map { try ChatTemplate.fromFile($0) }
        try kernels.apply()
        let path = try model.resolvedPath()
        guard FileManager.default.fileExists(atPath: path) else { throw ToolboxError("model file not found: \(path)") }
        let generator = try Generator(modelPath: path, threads: threads)

        var text = prompt
        if chat {
            let template = try overrideTemplate ?? generator.modelChatTemplate()
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: prompt))
            text = try generator.chatPrompt(messages, template: template)
        }
        let tokens = generator.tokens(forPrompt: text, rendered: chat)
        if verbose { printError("prompt: \(tokens.count) tokens") }

        let result = try generator.generate(promptTokens: tokens, maxTokens: maxTokens, sampling: sampling) { piece in
            FileHandle.standardOutput.write(Data(piece.utf8))
        }
        if !result.text.hasSuffix("\n") { FileHandle.standardOutput.write(Data("\n".utf8)) }
        if verbose {
            let prefill = Double(tokens.count) / max(result.prefillSeconds, 1e-9)
            let decode = Double(result.tokens.count) / max(result.decodeSeconds, 1e-9)
            printError(String(format: "prefill %.1f tokens/s, generation %.1f tokens/s, %d tokens, finish: %@",
                              prefill, decode, result.tokens.count, result.finishReason.rawValue))
        }
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
