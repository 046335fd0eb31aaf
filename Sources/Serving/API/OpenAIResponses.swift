import Foundation

public struct Usage: Sendable, Equatable, Codable {
    public struct PromptDetails: Sendable, Equatable, Codable {
        public var cachedTokens: Int
        enum CodingKeys: String, CodingKey { case cachedTokens = "cached_tokens" }
    }
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int
    public var promptTokensDetails: PromptDetails

    public init(promptTokens: Int, completionTokens: Int, cachedTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        totalTokens = promptTokens + completionTokens
        promptTokensDetails = PromptDetails(cachedTokens: cachedTokens)
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
        case promptTokensDetails = "prompt_tokens_details"
    }
}

/// Completions' logprobs: parallel arrays, one entry per token (prompt tokens first with `echo`).
public struct CompletionLogprobs: Sendable, Equatable, Codable {
    public var tokens: [String] = []
    /// nil for the first prompt token, which has no context to be predicted from.
    public var tokenLogprobs: [Float?] = []
    public var topLogprobs: [[String: Float]?] = []
    public var textOffset: [Int] = []

    enum CodingKeys: String, CodingKey {
        case tokens, tokenLogprobs = "token_logprobs", topLogprobs = "top_logprobs", textOffset = "text_offset"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tokens, forKey: .tokens)
        var logprobs = container.nestedUnkeyedContainer(forKey: .tokenLogprobs)
        for value in tokenLogprobs { if let value { try logprobs.encode(value) } else { try logprobs.encodeNil() } }
        var tops = container.nestedUnkeyedContainer(forKey: .topLogprobs)
        for value in topLogprobs { if let value { try tops.encode(value) } else { try tops.encodeNil() } }
        try container.encode(textOffset, forKey: .textOffset)
    }
}

public struct CompletionChoice: Sendable, Equatable, Codable {
    public var index: Int
    public var text: String
    public var logprobs: CompletionLogprobs?
    public var finishReason: String?

    enum CodingKeys: String, CodingKey { case index, text, logprobs, finishReason = "finish_reason" }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(index, forKey: .index)
        try container.encode(text, forKey: .text)
        try container.encode(logprobs, forKey: .logprobs)
        try container.encode(finishReason, forKey: .finishReason)
    }
}

/// A completion, or (object `text_completion` too, as OpenAI sends) one streamed chunk of it.
public struct CompletionResponse: Sendable, Equatable, Codable {
    public var id: String
    public var object = "text_completion"
    public var created: Int
    public var model: String
    public var choices: [CompletionChoice]
    public var usage: Usage?
}

/// Chat logprobs: one entry per token with its bytes and alternatives.
public struct ChatLogprobs: Sendable, Equatable, Codable {
    public struct Alternative: Sendable, Equatable, Codable {
        public var token: String
        public var logprob: Float
        public var bytes: [UInt8]
    }
    public struct Entry: Sendable, Equatable, Codable {
        public var token: String
        public var logprob: Float
        public var bytes: [UInt8]
        public var topLogprobs: [Alternative]
        enum CodingKeys: String, CodingKey { case token, logprob, bytes, topLogprobs = "top_logprobs" }
    }
    public var content: [Entry]
}

public struct ChatMessageOutput: Sendable, Equatable, Codable {
    public var role: String?
    public var content: String?
}

public struct ChatChoice: Sendable, Equatable, Codable {
    public var index: Int
    /// `message` in a full response, `delta` in a streamed chunk.
    public var message: ChatMessageOutput?
    public var delta: ChatMessageOutput?
    public var logprobs: ChatLogprobs?
    public var finishReason: String?

    enum CodingKeys: String, CodingKey { case index, message, delta, logprobs, finishReason = "finish_reason" }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(index, forKey: .index)
        try container.encodeIfPresent(message, forKey: .message)
        try container.encodeIfPresent(delta, forKey: .delta)
        try container.encode(logprobs, forKey: .logprobs)
        try container.encode(finishReason, forKey: .finishReason)
    }
}

/// A chat completion (`chat.completion`) or one streamed chunk (`chat.completion.chunk`).
public struct ChatCompletionResponse: Sendable, Equatable, Codable {
    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [ChatChoice]
    public var usage: Usage?
}

public struct ModelList: Sendable, Equatable, Codable {
    public struct Model: Sendable, Equatable, Codable {
        public var id: String
        public var object = "model"
        public var created: Int
        public var ownedBy = "tandem"
        public var root: String
        public var maxModelLen: Int
        enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by", root, maxModelLen = "max_model_len" }
    }
    public var object = "list"
    public var data: [Model]
}
