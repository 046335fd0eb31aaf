import Foundation
import GGUF
import ModelStore
import Tokenization
import TestSupport

/// Runs the Python references in Tests/TokenizationTests/Python (independent implementations:
/// Hugging Face `tokenizers`, `sentencepiece`, `jinja2`, the `gguf` package).
enum PythonReference {
    static let scriptsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Python")

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `script` with `arguments`, feeding `input` as JSON on stdin; decodes stdout as `T`.
    static func run<T: Decodable>(_ script: String, _ arguments: [String] = [], input: some Encodable, as: T.Type) throws -> T {
        let encoder = JSONEncoder()
        // Sorted keys: Python then sees objects' keys in a known order (tests write them sorted).
        encoder.outputFormatting = .sortedKeys
        let result = try runProcess("/usr/bin/env", ["python3", scriptsFolder.appendingPathComponent(script).path] + arguments,
                                    input: try encoder.encode(input))
        guard result.status == 0 else {
            throw Failure(description: "\(script) failed (\(result.status)): \(result.stderr)")
        }
        return try JSONDecoder().decode(T.self, from: result.stdoutData)
    }
}

enum DefaultModel {
    /// The default model's path (the cache rule lives in ModelStore's DefaultModel); a test that
    /// needs it fails with the command that installs it when it is missing.
    static var path: String { get throws { try requireModel(at: ModelStore.DefaultModel.path()) } }

    static let file: Result<GGUFFile, any Error> = Result { try GGUFFile(path: path) }

    /// The model's tokenizer as Tandem reads it, optionally with another pre-tokenizer.
    static func tokenizer(preTokenizer: String? = nil) throws -> Tokenizer {
        var configuration = try TokenizerConfiguration(gguf: file.get())
        if let preTokenizer { configuration.preTokenizer = preTokenizer }
        return try Tokenizer(configuration: configuration)
    }

    /// The file's tokenizer metadata as the `gguf` package reads it (to check Tandem's reading).
    struct Metadata: Decodable {
        var model: String
        var pre: String?
        var tokens: [String]
        var tokenTypes: [Int32]
        var merges: [String]
        var bos: Int32?
        var eos: Int32?
        var unknown: Int32?
        var padding: Int32?
        var addBOS: Bool?
        var chatTemplate: String?

        enum CodingKeys: String, CodingKey {
            case model = "tokenizer.ggml.model", pre = "tokenizer.ggml.pre", tokens = "tokenizer.ggml.tokens"
            case tokenTypes = "tokenizer.ggml.token_type", merges = "tokenizer.ggml.merges"
            case bos = "tokenizer.ggml.bos_token_id", eos = "tokenizer.ggml.eos_token_id"
            case unknown = "tokenizer.ggml.unknown_token_id", padding = "tokenizer.ggml.padding_token_id"
            case addBOS = "tokenizer.ggml.add_bos_token", chatTemplate = "tokenizer.chat_template"
        }

        func configuration(preTokenizer: String? = nil) -> TokenizerConfiguration {
            TokenizerConfiguration(
                model: model == "llama" ? .llama : .gpt2, tokens: tokens, tokenTypes: tokenTypes, merges: merges,
                preTokenizer: preTokenizer ?? pre, bosTokenID: bos, eosTokenID: eos, unknownTokenID: unknown,
                paddingTokenID: padding, addBOS: addBOS)
        }
    }

    static let metadata: Result<Metadata, Error> = Result {
        try PythonReference.run("vocab_dump.py", [try path], input: [String](), as: Metadata.self)
    }
}
