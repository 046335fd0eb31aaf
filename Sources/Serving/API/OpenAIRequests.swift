import PDProtocol
import Foundation

/// A prompt as the completions API takes it: text, token ids, or a list of either.
public enum PromptInput: Sendable, Equatable, Decodable {
    case text(String)
    case texts([String])
    case tokens([Int])
    case tokenLists([[Int]])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) { self = .text(text) }
        else if let texts = try? container.decode([String].self) { self = .texts(texts) }
        else if let tokens = try? container.decode([Int].self) { self = .tokens(tokens) }
        else if let lists = try? container.decode([[Int]].self) { self = .tokenLists(lists) }
        else {
            throw DecodingError.typeMismatch(PromptInput.self, .init(
                codingPath: decoder.codingPath,
                debugDescription: "expected a string, an array of strings, an array of token ids or an array of arrays of token ids"))
        }
    }
}

/// `stop`: one string or a list of them.
public struct StopInput: Sendable, Equatable, Decodable {
    public var strings: [String]

    public init(_ strings: [String]) { self.strings = strings }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { strings = [] }
        else if let one = try? container.decode(String.self) { strings = [one] }
        else if let many = try? container.decode([String].self) { strings = many }
        else {
            throw DecodingError.typeMismatch(StopInput.self, .init(
                codingPath: decoder.codingPath, debugDescription: "expected a string or an array of strings"))
        }
    }
}

public struct StreamOptions: Sendable, Equatable, Decodable {
    public var includeUsage: Bool?
    enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
}

/// The sampling and stopping parameters both APIs share (OpenAI's plus vLLM's extensions).
public struct CommonParameters: Sendable, Equatable, Decodable {
    public var model: String?
    public var temperature: Float?
    public var topP: Float?
    public var topK: Int?
    public var minP: Float?
    public var seed: Int?
    public var stop: StopInput?
    public var stopTokenIDs: [Int]?
    public var n: Int?
    public var presencePenalty: Float?
    public var frequencyPenalty: Float?
    public var repetitionPenalty: Float?
    public var logitBias: [String: Float]?
    public var ignoreEOS: Bool?
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    /// Set by a PD router: this instance's leg of a disaggregated request.
    public var disaggregateInfo: DisaggregateInfo?

    enum CodingKeys: String, CodingKey {
        case model, temperature, seed, stop, n, stream
        case disaggregateInfo = "disaggregate_info"
        case topP = "top_p", topK = "top_k", minP = "min_p", stopTokenIDs = "stop_token_ids"
        case presencePenalty = "presence_penalty", frequencyPenalty = "frequency_penalty"
        case repetitionPenalty = "repetition_penalty", logitBias = "logit_bias", ignoreEOS = "ignore_eos"
        case streamOptions = "stream_options"
    }
}

/// `POST /v1/completions`.
public struct CompletionRequest: Sendable, Equatable, Decodable {
    public var common: CommonParameters
    public var prompt: PromptInput
    public var maxTokens: Int?
    /// Number of top alternatives per token (0 reports only the sampled token's own).
    public var logprobs: Int?
    public var echo: Bool?

    enum CodingKeys: String, CodingKey {
        case prompt, logprobs, echo
        case maxTokens = "max_tokens"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        common = try CommonParameters(from: decoder)
        prompt = try container.decode(PromptInput.self, forKey: .prompt)
        maxTokens = try container.decodeIfPresent(Int.self, forKey: .maxTokens)
        logprobs = try container.decodeIfPresent(Int.self, forKey: .logprobs)
        echo = try container.decodeIfPresent(Bool.self, forKey: .echo)
    }
}

/// One chat message; `content` is text or a list of text parts.
public struct ChatMessageInput: Sendable, Equatable, Decodable {
    public var role: String
    public var content: String

    struct Part: Decodable {
        var type: String
        var text: String?
    }

    enum CodingKeys: String, CodingKey { case role, content }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        role = try container.decode(String.self, forKey: .role)
        let absent = try !container.contains(.content) || container.decodeNil(forKey: .content)
        if absent {
            content = ""
        } else if let text = try? container.decode(String.self, forKey: .content) {
            content = text
        } else {
            let parts = try container.decode([Part].self, forKey: .content)
            if let other = parts.first(where: { $0.type != "text" }) {
                throw DecodingError.dataCorruptedError(
                    forKey: .content, in: container,
                    debugDescription: "content part type '\(other.type)' is not supported (only 'text')")
            }
            content = parts.compactMap(\.text).joined()
        }
    }
}

/// `POST /v1/chat/completions`.
public struct ChatCompletionRequest: Sendable, Equatable, Decodable {
    public var common: CommonParameters
    public var messages: [ChatMessageInput]
    public var maxTokens: Int?
    public var maxCompletionTokens: Int?
    public var logprobs: Bool?
    public var topLogprobs: Int?

    enum CodingKeys: String, CodingKey {
        case messages, logprobs
        case maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", topLogprobs = "top_logprobs"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        common = try CommonParameters(from: decoder)
        messages = try container.decode([ChatMessageInput].self, forKey: .messages)
        maxTokens = try container.decodeIfPresent(Int.self, forKey: .maxTokens)
        maxCompletionTokens = try container.decodeIfPresent(Int.self, forKey: .maxCompletionTokens)
        logprobs = try container.decodeIfPresent(Bool.self, forKey: .logprobs)
        topLogprobs = try container.decodeIfPresent(Int.self, forKey: .topLogprobs)
    }
}

/// Decodes a request body, turning every failure into a 400 that names the parameter.
public enum RequestDecoding {
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(OpenAIError) -> T {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw OpenAIError.malformedJSON("the body is not valid JSON")
        }
        guard object is [String: Any] else { throw OpenAIError.malformedJSON("the body must be a JSON object") }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw parameterError(error)
        } catch {
            throw OpenAIError.malformedJSON("\(error)")
        }
    }

    static func parameterError(_ error: DecodingError) -> OpenAIError {
        func path(_ codingPath: [any CodingKey]) -> String {
            var text = ""
            for key in codingPath {
                if let index = key.intValue { text += "[\(index)]" } else { text += text.isEmpty ? key.stringValue : ".\(key.stringValue)" }
            }
            return text
        }
        switch error {
        case .keyNotFound(let key, let context):
            let name = path(context.codingPath + [key])
            return .invalidParameter(name, "'\(name)' is a required property")
        case .typeMismatch(let type, let context):
            let name = path(context.codingPath)
            return .invalidParameter(name, "Invalid type for '\(name)': expected \(expectation(type, context))")
        case .valueNotFound(let type, let context):
            let name = path(context.codingPath)
            return .invalidParameter(name, "Invalid type for '\(name)': expected \(expectation(type, context)), got null")
        case .dataCorrupted(let context):
            let name = path(context.codingPath)
            return .invalidParameter(name, "Invalid value for '\(name)': \(context.debugDescription)")
        @unknown default:
            return .malformedJSON("\(error)")
        }
    }

    private static func expectation(_ type: Any.Type, _ context: DecodingError.Context) -> String {
        if type == PromptInput.self || type == StopInput.self { return context.debugDescription }
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        case is [Any].Type: return "an array"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") || name.contains("Parameters") || name.contains("Options") { return "an object" }
            return "a value of type \(name)"
        }
    }
}
