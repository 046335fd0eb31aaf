import Foundation
import Jinja

public struct ChatMessage: Sendable, Codable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A value passed to a template besides the messages (`tools`, `date_string`, ...).
public indirect enum ChatTemplateValue: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([ChatTemplateValue])
    /// Keys in order (it shows in `tojson`).
    case object([(key: String, value: ChatTemplateValue)])

    var jinjaValue: JinjaValue {
        switch self {
        case .none: .none
        case .bool(let b): .bool(b)
        case .int(let i): .int(i)
        case .double(let d): .double(d)
        case .string(let s): .string(s)
        case .array(let items): .array(items.map(\.jinjaValue))
        case .object(let pairs): .object(JinjaObject(pairs.map { ($0.key, $0.value.jinjaValue) }))
        }
    }
}

public enum ChatTemplateError: Error, Equatable, CustomStringConvertible {
    /// The template is not valid Jinja.
    case syntax(String)
    /// Valid Jinja that this interpreter does not implement.
    case unsupported(String)
    /// Rendering failed (an undefined value used, a type error).
    case render(String)
    /// The template called `raise_exception(message)`.
    case raised(String)
    case unreadableFile(String)

    init(_ error: JinjaError) {
        self = switch error {
        case .syntax(let what): .syntax(what)
        case .unsupported(let what): .unsupported(what)
        case .render(let what): .render(what)
        case .raised(let message): .raised(message)
        }
    }

    public var description: String {
        switch self {
        case .syntax(let what): "chat template: syntax error: \(what)"
        case .unsupported(let what): "chat template: unsupported \(what)"
        case .render(let what): "chat template: \(what)"
        case .raised(let message): "chat template: \(message)"
        case .unreadableFile(let path): "chat template: cannot read the file '\(path)'"
        }
    }
}

/// A chat template (the Jinja in a GGUF's `tokenizer.chat_template`), parsed once at start-up:
/// anything it cannot render is reported then, not on the first request.
public struct ChatTemplate: Sendable {
    public let source: String
    private let template: JinjaTemplate

    public init(source: String) throws {
        self.source = source
        do { template = try JinjaTemplate(source: source) } catch let error as JinjaError { throw ChatTemplateError(error) }
    }

    /// For `--chat-template FILE`.
    public static func fromFile(_ path: String) throws -> ChatTemplate {
        guard let data = FileManager.default.contents(atPath: path) else { throw ChatTemplateError.unreadableFile(path) }
        return try ChatTemplate(source: String(decoding: data, as: UTF8.self))
    }

    /// The prompt for `messages`, with the assistant's turn opened when `addGenerationPrompt`.
    public func render(
        messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String = "", eosToken: String = "",
        extra: [String: ChatTemplateValue]? = nil
    ) throws -> String {
        var context: [String: JinjaValue] = [
            "messages": .array(messages.map { .object(JinjaObject([("role", .string($0.role)), ("content", .string($0.content))])) }),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
        ]
        for (key, value) in extra ?? [:] { context[key] = value.jinjaValue }
        do { return try template.render(context: context) } catch let error as JinjaError { throw ChatTemplateError(error) }
    }
}
