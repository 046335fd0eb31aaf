import Foundation
import GGUF
import Tokenization

/// One prompt in, a completion out: tokenizes (optionally through the chat template),
/// prefills, samples, streams text and stops at an end-of-generation token or the token limit.
/// For `tandem generate`, tests and benchmarks; serving drives `Transformer` through the
/// scheduler instead.
public final class Generator: PromptBuilding {
    public let weights: ModelWeights
    public let tokenizer: Tokenizer
    public let transformer: Transformer
    public let blockSize = 16
    /// Longest prompt chunk per forward step (bounds the scratch memory of long prompts).
    public var prefillChunk = 512

    public init(modelPath: String, threads: Int) throws {
        weights = try ModelWeights(path: modelPath)
        tokenizer = try Tokenizer(gguf: weights.file)
        transformer = Transformer(weights: weights, backend: try CPUBackend(threads: threads))
    }

    /// Generates from `promptTokens`, calling `onText` with each piece of text as soon as it
    /// is complete UTF-8.
    public func generate(promptTokens: [Int32], maxTokens: Int, sampling: SamplingParameters,
                         onText: (String) -> Void = { _ in }) throws -> GenerationResult {
        guard !promptTokens.isEmpty else { throw GenerationError.emptyPrompt }
        let context = transformer.config.contextLength
        guard promptTokens.count < context else {
            throw GenerationError.promptTooLong(tokens: promptTokens.count, context: context)
        }
        let limit = min(maxTokens, context - promptTokens.count)
        let positions = promptTokens.count + limit
        let cache = try transformer.makeCache(blockSize: blockSize, numBlocks: max(1, (positions + blockSize - 1) / blockSize))
        let table = (0..<cache.layout.numBlocks).map(Int32.init)
        var sampler = try Sampler(parameters: sampling)
        var detokenizer = IncrementalDetokenizer(tokenizer: tokenizer, skipSpecial: true)
        var result = GenerationResult(promptTokens: promptTokens)

        let prefillStart = DispatchTime.now()
        var logits: Logits?
        var start = 0
        while start < promptTokens.count {
            let end = min(promptTokens.count, start + prefillChunk)
            logits = try transformer.forward(ForwardBatch([
                SequenceChunk(tokens: Array(promptTokens[start..<end]), startPosition: start, blockTable: table),
            ]), cache: cache)
            start = end
        }
        result.prefillSeconds = seconds(since: prefillStart)

        let decodeStart = DispatchTime.now()
        result.finishReason = .maxTokens
        while result.tokens.count < limit, let current = logits {
            let token = current.values.withUnsafeBufferPointer { values in
                sampler.sample(logits: UnsafeBufferPointer(rebasing: values[0..<current.vocabSize]),
                               history: result.tokens, prompt: promptTokens).token
            }
            if tokenizer.endOfGenerationTokens.contains(token) {
                result.finishReason = .endOfGeneration
                break
            }
            result.tokens.append(token)
            let text = detokenizer.append(token)
            if !text.isEmpty {
                result.text += text
                onText(text)
            }
            guard result.tokens.count < limit else { break }
            logits = try transformer.forward(ForwardBatch([
                SequenceChunk(tokens: [token], startPosition: promptTokens.count + result.tokens.count - 1, blockTable: table),
            ]), cache: cache)
        }
        let rest = detokenizer.finish()
        if !rest.isEmpty {
            result.text += rest
            onText(rest)
        }
        result.decodeSeconds = seconds(since: decodeStart)
        return result
    }

    private func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }
}

public struct GenerationResult: Sendable {
    public enum FinishReason: String, Sendable {
        /// The model produced an end-of-generation token (not included in `tokens`).
        case endOfGeneration
        /// `maxTokens` (or the context length) was reached.
        case maxTokens
    }

    public var promptTokens: [Int32]
    public var tokens: [Int32] = []
    public var text = ""
    public var finishReason = FinishReason.maxTokens
    public var prefillSeconds = 0.0
    /// From the first sampled token to the last.
    public var decodeSeconds = 0.0
}

public enum GenerationError: Error, Equatable, CustomStringConvertible {
    case emptyPrompt
    case promptTooLong(tokens: Int, context: Int)
    case noChatTemplate

    public var description: String {
        switch self {
        case .emptyPrompt: return "the prompt is empty (no tokens)"
        case .promptTooLong(let tokens, let context):
            return "the prompt has \(tokens) tokens, which does not fit the model's context of \(context)"
        case .noChatTemplate:
            return "the model has no chat template (tokenizer.chat_template); pass --chat-template FILE"
        }
    }
}
