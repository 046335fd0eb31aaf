import Engine
import Foundation
import Hummingbird

/// `POST /v1/chat/completions`: messages rendered with the model's chat template (or
/// `--chat-template`), `n` choices, streamed or not, with logprobs / top_logprobs.
struct ChatCompletionsEndpoint: Sendable {
    let server: ServingContext

    func respond(to body: ChatCompletionRequest, arrival: ContinuousClock.Instant) async throws -> Response {
        let context = server.model
        try ValidatedParameters.checkModel(body.common.model, context: context)
        let wantsLogprobs = body.logprobs ?? false
        if body.topLogprobs != nil && !wantsLogprobs {
            throw OpenAIError.invalidParameter("top_logprobs", "Invalid value for 'top_logprobs': only allowed when 'logprobs' is true.")
        }
        if let top = body.topLogprobs, !(0...SamplingParameters.maxLogprobs).contains(top) {
            throw OpenAIError.invalidParameter("top_logprobs", "Invalid value for 'top_logprobs': \(top) must be in 0...\(SamplingParameters.maxLogprobs).")
        }
        let parameters = try ValidatedParameters(body.common, logprobs: wantsLogprobs ? (body.topLogprobs ?? 0) : nil, context: context)
        guard !body.messages.isEmpty else {
            throw OpenAIError.invalidParameter("messages", "Invalid value for 'messages': at least one message is required.")
        }
        let prompt = try context.tokens(forChat: body.messages)
        let requested = body.maxCompletionTokens ?? body.maxTokens
        let param = body.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens"
        if let requested, requested < 1 {
            throw OpenAIError.invalidParameter(param, "Invalid value for '\(param)': \(requested) must be at least 1.")
        }
        // Without a limit, the rest of the context (the engine refuses a prompt that fills it).
        let maxTokens = requested ?? max(1, context.maxModelLength - prompt.count)

        let id = ResponseID.make("chatcmpl-")
        var jobs = (0..<parameters.n).map { index in
            ChoiceJob(index: index, request: parameters.request(id: "\(id)-\(index)", prompt: prompt, maxTokens: maxTokens),
                      stops: parameters.stops)
        }
        let info = body.common.disaggregateInfo
        if let prefillLeg = try await Disaggregation.dispatch(info, jobs: &jobs, server: server) { return prefillLeg }
        let builder = ChatBuilder(id: id, model: context.servedModelName, context: context, wantsLogprobs: wantsLogprobs,
                                  promptTokens: prompt.count, choices: parameters.n)
        let generation = try server.start(jobs, arrival: arrival, decodeLeg: info != nil)
        if parameters.stream {
            return EventStream.response(events: generation.events,
                                        producer: ChatChunks(builder: builder, includeUsage: parameters.includeUsage),
                                        cancel: generation.cancel)
        }
        defer { generation.cancel() }
        var result = builder
        for try await (index, event) in generation.events { _ = result.apply(index: index, event: event) }
        return try JSONResponse.make(result.response())
    }
}

/// A chat completion's choices as their events arrive: the deltas a stream sends, and the whole.
struct ChatBuilder: Sendable {
    struct Choice: Sendable {
        var text = ""
        var tokens: [SampledToken] = []
        var finishReason: String?
        var statistics = RequestStatistics()
    }

    let id: String
    let model: String
    let created = Int(Date().timeIntervalSince1970)
    let context: ModelContext
    let wantsLogprobs: Bool
    let promptTokens: Int
    var choices: [Choice]

    init(id: String, model: String, context: ModelContext, wantsLogprobs: Bool, promptTokens: Int, choices: Int) {
        self.id = id
        self.model = model
        self.context = context
        self.wantsLogprobs = wantsLogprobs
        self.promptTokens = promptTokens
        self.choices = Array(repeating: Choice(), count: choices)
    }

    /// Applies one event; returns the delta a stream sends for it.
    mutating func apply(index: Int, event: ChoiceEvent) -> ChatChoice? {
        switch event {
        case .promptLogprobs:
            return nil
        case .text(let text, let tokens):
            choices[index].text += text
            choices[index].tokens += tokens
            return ChatChoice(index: index, delta: ChatMessageOutput(content: text),
                              logprobs: wantsLogprobs ? ChatLogprobs(tokens, context: context) : nil)
        case .finished(let reason, let statistics):
            choices[index].finishReason = reason
            choices[index].statistics = statistics
            return ChatChoice(index: index, delta: ChatMessageOutput(), finishReason: reason)
        }
    }

    var usage: Usage {
        Usage(promptTokens: promptTokens, completionTokens: choices.map(\.statistics.outputTokens).reduce(0, +),
              cachedTokens: choices.first?.statistics.cachedPromptTokens ?? 0)
    }

    func response() -> ChatCompletionResponse {
        ChatCompletionResponse(id: id, object: "chat.completion", created: created, model: model,
                               choices: choices.enumerated().map { index, choice in
            ChatChoice(index: index, message: ChatMessageOutput(role: "assistant", content: choice.text),
                       logprobs: wantsLogprobs ? ChatLogprobs(choice.tokens, context: context) : nil,
                       finishReason: choice.finishReason)
        }, usage: usage)
    }

    func chunk(_ choices: [ChatChoice], usage: Usage? = nil) -> ChatCompletionResponse {
        ChatCompletionResponse(id: id, object: "chat.completion.chunk", created: created, model: model, choices: choices,
                               usage: usage)
    }
}

struct ChatChunks: ChunkProducer {
    var builder: ChatBuilder
    let includeUsage: Bool

    /// Each choice opens with the assistant's role, as OpenAI streams it.
    mutating func start() -> [any Encodable & Sendable] {
        builder.choices.indices.map { builder.chunk([ChatChoice(index: $0, delta: ChatMessageOutput(role: "assistant", content: ""))]) }
    }

    mutating func chunks(index: Int, event: ChoiceEvent) -> [any Encodable & Sendable] {
        guard let choice = builder.apply(index: index, event: event) else { return [] }
        if choice.finishReason == nil && (choice.delta?.content ?? "").isEmpty && (choice.logprobs?.content.isEmpty ?? true) {
            return []
        }
        return [builder.chunk([choice])]
    }

    mutating func end() -> [any Encodable & Sendable] {
        includeUsage ? [builder.chunk([], usage: builder.usage)] : []
    }
}
