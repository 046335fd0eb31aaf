import GGUF
import Tokenization

/// Turning a prompt or chat messages into token ids for a loaded model: what `Generator`
/// (`tandem generate`) and `ServingEngine` (api-server) share.
public protocol PromptBuilding {
    var weights: ModelWeights { get }
    var tokenizer: Tokenizer { get }
}

extension PromptBuilding {
    /// The model's own chat template (`tokenizer.chat_template`), parsed.
    public func modelChatTemplate() throws -> ChatTemplate {
        guard let template = try ChatTemplate.fromGGUF(weights.file) else { throw GenerationError.noChatTemplate }
        return template
    }

    /// The prompt text for `messages` with the assistant's turn opened.
    public func chatPrompt(_ messages: [ChatMessage], template: ChatTemplate) throws -> String {
        let piece = { (id: Int32?) in id.map { self.tokenizer.piece(for: $0) } ?? "" }
        return try template.render(messages: messages, addGenerationPrompt: true,
                                   bosToken: piece(tokenizer.bosToken), eosToken: piece(tokenizer.eosToken))
    }

    /// Token ids of a plain prompt (with the tokenizer's BOS when it adds one) or of a rendered
    /// chat prompt (special tokens in the text are parsed; no second BOS).
    public func tokens(forPrompt prompt: String, rendered chat: Bool) -> [Int32] {
        if chat, let bos = tokenizer.bosToken, prompt.hasPrefix(tokenizer.piece(for: bos)) {
            return tokenizer.encode(prompt, addSpecial: false, parseSpecial: true)
        }
        return tokenizer.encode(prompt, addSpecial: true, parseSpecial: chat)
    }
}
