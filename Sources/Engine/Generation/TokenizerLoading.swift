import GGUF
import Tokenization

/// The tokenizer described by a GGUF file's `tokenizer.ggml.*` keys.
/// (Bridges GGUF to `Tokenizer(configuration:)` until the Tokenization module reads GGUF files
/// itself; then this file goes.)
func loadTokenizer(from file: GGUFFile) throws -> Tokenizer {
    func has(_ key: String) -> Bool { file.metadata[key] != nil }
    func id(_ key: String) throws -> Int32? { has(key) ? Int32(try file.uint(key)) : nil }
    func flag(_ key: String) throws -> Bool? { has(key) ? try file.bool(key) : nil }

    guard has("tokenizer.ggml.model") else { throw TokenizerError.missingMetadata("tokenizer.ggml.model") }
    let modelName = try file.string("tokenizer.ggml.model")
    guard let model = TokenizerConfiguration.Model(rawValue: modelName) else {
        throw TokenizerError.unsupportedModel(modelName)
    }
    guard has("tokenizer.ggml.tokens") else { throw TokenizerError.missingMetadata("tokenizer.ggml.tokens") }
    let extraEnds = try ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"].compactMap { try id($0) }
    let configuration = TokenizerConfiguration(
        model: model,
        tokens: try file.stringArray("tokenizer.ggml.tokens"),
        tokenTypes: has("tokenizer.ggml.token_type") ? try file.intArray("tokenizer.ggml.token_type").map { Int32($0) } : [],
        scores: has("tokenizer.ggml.scores") ? try file.floatArray("tokenizer.ggml.scores") : [],
        merges: has("tokenizer.ggml.merges") ? try file.stringArray("tokenizer.ggml.merges") : [],
        preTokenizer: has("tokenizer.ggml.pre") ? try file.string("tokenizer.ggml.pre") : nil,
        bosTokenID: try id("tokenizer.ggml.bos_token_id"),
        eosTokenID: try id("tokenizer.ggml.eos_token_id"),
        unknownTokenID: try id("tokenizer.ggml.unknown_token_id"),
        paddingTokenID: try id("tokenizer.ggml.padding_token_id"),
        extraEndOfGenerationIDs: extraEnds,
        addBOS: try flag("tokenizer.ggml.add_bos_token"),
        addEOS: try flag("tokenizer.ggml.add_eos_token") ?? false,
        addSpacePrefix: try flag("tokenizer.ggml.add_space_prefix"))
    return try Tokenizer(configuration: configuration)
}
