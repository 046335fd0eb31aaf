/// Everything a tokenizer needs, as plain arrays: what a GGUF file's `tokenizer.ggml.*` keys hold.
/// Tests build tokenizers from this directly; `Tokenizer(gguf:)` fills it from a file.
public struct TokenizerConfiguration: Sendable {
    public enum Model: String, Sendable {
        /// Byte-level BPE with ranked merges (GPT-2, Llama 3, Qwen2, SmolLM).
        case gpt2
        /// SentencePiece BPE with scores and `<0xNN>` byte fallback (Llama 2, Mistral).
        case llama
    }

    public var model: Model
    public var tokens: [String]
    /// GGUF token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    public var tokenTypes: [Int32]
    public var scores: [Float]
    /// "left right" pairs, highest priority first (gpt2 only).
    public var merges: [String]
    /// The pre-tokenizer name (`tokenizer.ggml.pre`); nil means GPT-2's.
    public var preTokenizer: String?
    public var bosTokenID: Int32?
    public var eosTokenID: Int32?
    public var unknownTokenID: Int32?
    public var paddingTokenID: Int32?
    /// Extra end-of-generation ids named by the file (`eot_token_id`, `eom_token_id`).
    public var extraEndOfGenerationIDs: [Int32]
    public var addBOS: Bool
    public var addEOS: Bool
    /// SentencePiece's dummy prefix: a space before the text (and dropped again on decode).
    public var addSpacePrefix: Bool

    public init(
        model: Model, tokens: [String], tokenTypes: [Int32] = [], scores: [Float] = [],
        merges: [String] = [], preTokenizer: String? = nil,
        bosTokenID: Int32? = nil, eosTokenID: Int32? = nil, unknownTokenID: Int32? = nil,
        paddingTokenID: Int32? = nil, extraEndOfGenerationIDs: [Int32] = [],
        addBOS: Bool? = nil, addEOS: Bool = false, addSpacePrefix: Bool? = nil
    ) {
        self.model = model
        self.tokens = tokens
        self.tokenTypes = tokenTypes
        self.scores = scores
        self.merges = merges
        self.preTokenizer = preTokenizer
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.unknownTokenID = unknownTokenID
        self.paddingTokenID = paddingTokenID
        self.extraEndOfGenerationIDs = extraEndOfGenerationIDs
        // llama.cpp's defaults when the file says nothing.
        self.addBOS = addBOS ?? (model == .llama)
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix ?? (model == .llama)
    }
}

public enum TokenType {
    public static let normal: Int32 = 1
    public static let unknown: Int32 = 2
    public static let control: Int32 = 3
    public static let userDefined: Int32 = 4
    public static let unused: Int32 = 5
    public static let byte: Int32 = 6
}

public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    case missingMetadata(String)
    case wrongMetadataType(key: String, expected: String, found: String)
    case unsupportedModel(String)
    case unsupportedPreTokenizer(String)
    case inconsistentVocabulary(String)

    public var description: String {
        switch self {
        case .missingMetadata(let key): "tokenizer: the GGUF file has no '\(key)'"
        case .wrongMetadataType(let key, let expected, let found):
            "tokenizer: '\(key)' in the GGUF file is \(found), expected \(expected)"
        case .unsupportedModel(let name):
            "tokenizer: unsupported tokenizer model '\(name)' (supported: gpt2, llama)"
        case .unsupportedPreTokenizer(let name):
            "tokenizer: unsupported pre-tokenizer '\(name)' (supported: default, gpt2, smollm, llama-bpe, llama3, qwen2)"
        case .inconsistentVocabulary(let what): "tokenizer: \(what)"
        }
    }
}
