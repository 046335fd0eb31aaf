import GGUF

extension Tokenizer {
    /// The tokenizer a GGUF file describes in its `tokenizer.ggml.*` keys.
    public convenience init(gguf file: GGUFFile) throws {
        try self.init(configuration: TokenizerConfiguration(gguf: file))
    }
}

extension TokenizerConfiguration {
    public init(gguf file: GGUFFile) throws {
        let metadata = file.metadata
        func required<T>(_ key: String, _ expected: String, _ read: (GGUFValue) -> T?) throws -> T {
            guard let value = metadata[key] else { throw TokenizerError.missingMetadata(key) }
            guard let result = read(value) else {
                throw TokenizerError.wrongMetadataType(key: key, expected: expected, found: value.typeDescription)
            }
            return result
        }
        func optional<T>(_ key: String, _ expected: String, _ read: (GGUFValue) -> T?) throws -> T? {
            guard metadata[key] != nil else { return nil }
            return try required(key, expected, read)
        }
        func tokenID(_ key: String) throws -> Int32? {
            // llama.cpp writes -1 (or a huge unsigned value) for "none".
            guard let id = try optional(key, "an integer", \.intValue), id >= 0, id <= Int(Int32.max) else { return nil }
            return Int32(id)
        }

        let modelName = try required("tokenizer.ggml.model", "a string", \.stringValue)
        let model: Model
        switch modelName {
        case "gpt2": model = .gpt2
        case "llama": model = .llama
        default: throw TokenizerError.unsupportedModel(modelName)
        }
        var extraEndOfGeneration: [Int32] = []
        for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let id = try tokenID(key) { extraEndOfGeneration.append(id) }
        }
        self.init(
            model: model,
            tokens: try required("tokenizer.ggml.tokens", "an array of strings", \.stringArray),
            tokenTypes: try optional("tokenizer.ggml.token_type", "an array of integers", \.intArray)?.map { Int32(truncatingIfNeeded: $0) } ?? [],
            scores: try optional("tokenizer.ggml.scores", "an array of numbers", \.floatArray) ?? [],
            merges: model == .gpt2 ? try required("tokenizer.ggml.merges", "an array of strings", \.stringArray) : [],
            preTokenizer: try optional("tokenizer.ggml.pre", "a string", \.stringValue),
            bosTokenID: try tokenID("tokenizer.ggml.bos_token_id"),
            eosTokenID: try tokenID("tokenizer.ggml.eos_token_id"),
            unknownTokenID: try tokenID("tokenizer.ggml.unknown_token_id"),
            paddingTokenID: try tokenID("tokenizer.ggml.padding_token_id"),
            extraEndOfGenerationIDs: extraEndOfGeneration,
            addBOS: try optional("tokenizer.ggml.add_bos_token", "a bool", \.boolValue),
            addEOS: try optional("tokenizer.ggml.add_eos_token", "a bool", \.boolValue) ?? false,
            addSpacePrefix: try optional("tokenizer.ggml.add_space_prefix", "a bool", \.boolValue))
    }
}

extension ChatTemplate {
    /// The template in a GGUF file's `tokenizer.chat_template`, or nil when it has none.
    public static func fromGGUF(_ file: GGUFFile) throws -> ChatTemplate? {
        guard let source = file.metadata["tokenizer.chat_template"]?.stringValue else { return nil }
        return try ChatTemplate(source: source)
    }
}
