import Foundation

/// The prompt of an OpenAI request body as one string, for the policies that look at it:
/// completions' `prompt` (a string, strings, or token ids written out), or chat `messages`'
/// roles and text contents in order.
public enum PromptText {
    public static func of(_ body: [String: Any]) -> String {
        if let prompt = body["prompt"] { return text(prompt) }
        guard let messages = body["messages"] as? [[String: Any]] else { return "" }
        var text = ""
        for message in messages {
            text += (message["role"] as? String ?? "") + "\n"
            if let content = message["content"] as? String {
                text += content
            } else if let parts = message["content"] as? [[String: Any]] {
                for part in parts { text += part["text"] as? String ?? "" }
            }
            text += "\n"
        }
        return text
    }

    private static func text(_ value: Any) -> String {
        switch value {
        case let string as String: string
        case let strings as [String]: strings.joined(separator: "\n")
        case let tokens as [Int]: tokens.map(String.init).joined(separator: " ")
        case let many as [Any]: many.map { text($0) }.joined(separator: "\n")
        default: ""
        }
    }
}
