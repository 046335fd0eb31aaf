import Engine
import Foundation
import Hummingbird

/// `POST /v1/completions`: text or token prompts (or lists of them) × `n` choices, streamed or
/// not, with `echo` and logprobs (prompt logprobs with `echo`, as lm-evaluation-harness asks).
struct CompletionsEndpoint: Sendable {
    let server: ServingContext

    static let defaultMaxTokens = 16

    struct Prompt: Sendable {
        var tokens: [Int32]
        var text: String
    }

    func respond(to body: CompletionRequest, arrival: ContinuousClock.Instant) async throws -> Response {
        let context = server.model
        try ValidatedParameters.checkModel(body.common.model, context: context)
        let parameters = try ValidatedParameters(body.common, logprobs: body.logprobs, context: context)
        let prompts = try parsePrompts(body.prompt, context: context)
        let maxTokens = body.maxTokens ?? Self.defaultMaxTokens
        guard maxTokens >= 0 else {
            throw OpenAIError.invalidParameter("max_tokens", "Invalid value for 'max_tokens': \(maxTokens) must be at least 0.")
        }
        let echo = body.echo ?? false
        let promptLogprobs = echo ? body.logprobs : nil
        let id = ResponseID.make("cmpl-")
        var jobs: [ChoiceJob] = []
        for (promptIndex, prompt) in prompts.enumerated() {
            for choice in 0..<parameters.n {
                let index = promptIndex * parameters.n + choice
                jobs.append(ChoiceJob(index: index, request: parameters.request(
                    id: "\(id)-\(index)", prompt: prompt.tokens, maxTokens: maxTokens, promptLogprobs: promptLogprobs),
                    stops: parameters.stops))
            }
        }
        let info = body.common.disaggregateInfo
        if let prefillLeg = try await Disaggregation.dispatch(info, jobs: &jobs, server: server) { return prefillLeg }
        let builder = CompletionBuilder(
            id: id, model: context.servedModelName, context: context, echo: echo, wantsLogprobs: body.logprobs != nil,
            prompts: jobs.map { prompts[$0.index / parameters.n] }, promptsPerChoice: parameters.n)

        let generation = try server.start(jobs, arrival: arrival, decodeLeg: info != nil)
        if parameters.stream {
            return EventStream.response(events: generation.events,
                                        producer: CompletionChunks(builder: builder, includeUsage: parameters.includeUsage),
                                        cancel: generation.cancel)
        }
        defer { generation.cancel() }
        var result = builder
        _ = result.start()
        for try await (index, event) in generation.events { _ = result.apply(index: index, event: event) }
        return try JSONResponse.make(result.response())
    }

    private func parsePrompts(_ input: PromptInput, context: ModelContext) throws(OpenAIError) -> [Prompt] {
        func text(_ text: String) throws(OpenAIError) -> Prompt {
            guard !text.isEmpty else {
                throw OpenAIError.invalidParameter("prompt", "Invalid value for 'prompt': the prompt must not be empty.")
            }
            return Prompt(tokens: context.tokens(forPrompt: text), text: text)
        }
        func tokens(_ ids: [Int]) throws(OpenAIError) -> Prompt {
            let tokens = try ValidatedParameters.checkTokens(ids, context: context, param: "prompt")
            return Prompt(tokens: tokens, text: context.tokenizer.decode(tokens))
        }
        let prompts: [Prompt]
        switch input {
        case .text(let value): prompts = [try text(value)]
        case .tokens(let ids): prompts = [try tokens(ids)]
        case .texts(let values):
            var list: [Prompt] = []
            for value in values { list.append(try text(value)) }
            prompts = list
        case .tokenLists(let lists):
            var list: [Prompt] = []
            for ids in lists { list.append(try tokens(ids)) }
            prompts = list
        }
        guard !prompts.isEmpty else {
            throw OpenAIError.invalidParameter("prompt", "Invalid value for 'prompt': the prompt must not be empty.")
        }
        guard prompts.count <= ValidatedParameters.maxN else {
            throw OpenAIError.invalidParameter("prompt", "Invalid value for 'prompt': at most \(ValidatedParameters.maxN) prompts per request.")
        }
        return prompts
    }
}

/// A completion's choices as their events arrive: the deltas a stream sends, and the whole.
struct CompletionBuilder: Sendable {
    struct Choice: Sendable {
        var prompt: CompletionsEndpoint.Prompt
        var text = ""
        var logprobs: CompletionLogprobs?
        var offset = 0
        var finishReason: String?
        var statistics = RequestStatistics()
    }

    let id: String
    let model: String
    let created = Int(Date().timeIntervalSince1970)
    let context: ModelContext
    let echo: Bool
    let wantsLogprobs: Bool
    let promptsPerChoice: Int
    var choices: [Choice]

    init(id: String, model: String, context: ModelContext, echo: Bool, wantsLogprobs: Bool,
         prompts: [CompletionsEndpoint.Prompt], promptsPerChoice: Int) {
        self.id = id
        self.model = model
        self.context = context
        self.echo = echo
        self.wantsLogprobs = wantsLogprobs
        self.promptsPerChoice = promptsPerChoice
        choices = prompts.map { Choice(prompt: $0, logprobs: wantsLogprobs ? CompletionLogprobs() : nil) }
    }

    /// The echoed prompts, when no prompt logprobs will come to carry them.
    mutating func start() -> [CompletionChoice] {
        guard echo && !wantsLogprobs else { return [] }
        return choices.indices.map { index in
            choices[index].text = choices[index].prompt.text
            return CompletionChoice(index: index, text: choices[index].prompt.text, logprobs: nil, finishReason: nil)
        }
    }

    /// Applies one event; returns what a stream sends for it.
    mutating func apply(index: Int, event: ChoiceEvent) -> CompletionChoice? {
        switch event {
        case .promptLogprobs(let logprobs):
            guard echo else { return nil }
            var delta = CompletionLogprobs()
            var offset = choices[index].offset
            delta.append(prompt: choices[index].prompt.tokens, logprobs: logprobs, context: context, offset: &offset)
            return add(index: index, text: choices[index].prompt.text, logprobs: delta, offset: offset)
        case .text(let text, let tokens):
            var delta: CompletionLogprobs?
            var offset = choices[index].offset + text.count
            if wantsLogprobs {
                offset = choices[index].offset
                var logprobs = CompletionLogprobs()
                logprobs.append(tokens, context: context, offset: &offset)
                delta = logprobs
                offset = choices[index].offset + text.count
            }
            return add(index: index, text: text, logprobs: delta, offset: offset)
        case .finished(let reason, let statistics):
            choices[index].finishReason = reason
            choices[index].statistics = statistics
            return CompletionChoice(index: index, text: "", logprobs: nil, finishReason: reason)
        }
    }

    private mutating func add(index: Int, text: String, logprobs: CompletionLogprobs?, offset: Int) -> CompletionChoice {
        choices[index].text += text
        choices[index].offset = offset
        if let logprobs {
            choices[index].logprobs?.tokens += logprobs.tokens
            choices[index].logprobs?.tokenLogprobs += logprobs.tokenLogprobs
            choices[index].logprobs?.topLogprobs += logprobs.topLogprobs
            choices[index].logprobs?.textOffset += logprobs.textOffset
        }
        return CompletionChoice(index: index, text: text, logprobs: logprobs, finishReason: nil)
    }

    /// Every prompt once (however many choices it has), every choice's output tokens.
    var usage: Usage {
        let firsts = stride(from: 0, to: choices.count, by: promptsPerChoice).map { choices[$0] }
        return Usage(promptTokens: firsts.map(\.prompt.tokens.count).reduce(0, +),
                     completionTokens: choices.map(\.statistics.outputTokens).reduce(0, +),
                     cachedTokens: firsts.map(\.statistics.cachedPromptTokens).reduce(0, +))
    }

    func response() -> CompletionResponse {
        CompletionResponse(id: id, created: created, model: model, choices: choices.enumerated().map { index, choice in
            CompletionChoice(index: index, text: choice.text, logprobs: choice.logprobs, finishReason: choice.finishReason)
        }, usage: usage)
    }

    func chunk(_ choices: [CompletionChoice], usage: Usage? = nil) -> CompletionResponse {
        CompletionResponse(id: id, created: created, model: model, choices: choices, usage: usage)
    }
}

struct CompletionChunks: ChunkProducer {
    var builder: CompletionBuilder
    let includeUsage: Bool

    mutating func start() -> [any Encodable & Sendable] {
        let echoed = builder.start()
        return echoed.map { builder.chunk([$0]) }
    }

    mutating func chunks(index: Int, event: ChoiceEvent) -> [any Encodable & Sendable] {
        guard let choice = builder.apply(index: index, event: event) else { return [] }
        if choice.finishReason == nil && choice.text.isEmpty && (choice.logprobs?.tokens.isEmpty ?? true) { return [] }
        return [builder.chunk([choice])]
    }

    mutating func end() -> [any Encodable & Sendable] {
        includeUsage ? [builder.chunk([], usage: builder.usage)] : []
    }
}
