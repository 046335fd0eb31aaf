/// A Jinja template, parsed once: anything this interpreter cannot render is reported when
/// it is parsed, not when it first renders. It implements the subset of Jinja that chat
/// templates use, rendered as Hugging Face renders them (`trim_blocks`, `lstrip_blocks`,
/// no trailing newline kept); `jinja2` is the reference the tests compare with.
public struct JinjaTemplate: Sendable {
    private let body: [JinjaStatement]

    /// Throws a `JinjaError` (`syntax` or `unsupported`, with the line and column).
    public init(source: String) throws {
        body = try JinjaParser.parse(source)
    }

    /// The output for `context` (the template's global names). Throws a `JinjaError`
    /// (`render`, or `raised` for `raise_exception`).
    public func render(context: [String: JinjaValue]) throws -> String {
        var renderer = JinjaRenderer(context: context)
        _ = try renderer.render(body)
        return renderer.output
    }
}

public enum JinjaError: Error, Equatable, CustomStringConvertible {
    /// The template is not valid Jinja.
    case syntax(String)
    /// Valid Jinja that this interpreter does not implement.
    case unsupported(String)
    /// Rendering failed (an undefined value used, a type error).
    case render(String)
    /// The template called `raise_exception(message)`.
    case raised(String)

    public var description: String {
        switch self {
        case .syntax(let what): "syntax error: \(what)"
        case .unsupported(let what): "unsupported \(what)"
        case .render(let what): what
        case .raised(let message): message
        }
    }
}
