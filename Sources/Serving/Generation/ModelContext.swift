import Engine
import Foundation
import Tokenization

/// What the API layer knows about the loaded model: its names, tokenizer, chat template and
/// length limit.
public struct ModelContext: Sendable {
    public var servedModelName: String
    public var modelPath: String
    /// Tokenizes prompts and renders chat messages, the same way `tandem generate` does.
    public let prompts: any PromptBuilding & Sendable
    public let chatTemplate: ChatTemplate?
    public var maxModelLength: Int
    public var created: Int

    public init(servedModelName: String, modelPath: String, engine: any PromptBuilding & Sendable, chatTemplate: ChatTemplate?,
                maxModelLength: Int) {
        self.servedModelName = servedModelName
        self.modelPath = modelPath
        prompts = engine
        self.chatTemplate = chatTemplate
        self.maxModelLength = maxModelLength
        created = Int(Date().timeIntervalSince1970)
    }

    public var tokenizer: Tokenizer { prompts.tokenizer }

    /// Token ids of a plain prompt, with the tokenizer's BOS when it adds one.
    func tokens(forPrompt text: String) -> [Int32] {
        prompts.tokens(forPrompt: text, rendered: false)
    }

    /// The chat prompt's tokens, rendered with the chat template.
    func tokens(forChat messages: [ChatMessageInput]) throws(OpenAIError) -> [Int32] {
        guard let chatTemplate else {
            throw OpenAIError.invalidRequest("This model has no chat template; start api-server with --chat-template FILE, or use /v1/completions.")
        }
        let text: String
        do {
            text = try prompts.chatPrompt(messages.map { ChatMessage(role: $0.role, content: $0.content) }, template: chatTemplate)
        } catch {
            throw OpenAIError.invalidParameter("messages", "The chat template could not render these messages: \(error)")
        }
        return prompts.tokens(forPrompt: text, rendered: true)
    }

    /// How a single token reads on its own (for logprobs).
    func text(ofToken token: Int32) -> String {
        tokenizer.decode([token])
    }
}
