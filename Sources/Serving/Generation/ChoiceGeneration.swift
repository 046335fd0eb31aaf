import Engine
import Foundation
import Tokenization

/// What one choice (one engine request) produces as text, in order: prompt logprobs when asked
/// for, final text with the tokens that produced it, then one `finished`.
enum ChoiceEvent: Sendable {
    case promptLogprobs([PromptTokenLogprob?])
    /// Text that is final (no stop string can start in it), with the tokens it came from since
    /// the previous event; either may be empty (a token can complete no text yet).
    case text(String, tokens: [SampledToken])
    /// `reason`: stop, length or abort (OpenAI's finish_reason).
    case finished(reason: String, statistics: RequestStatistics)
}

/// One choice to generate: its engine request and its stop strings. `n` and prompt lists
/// become several choices, numbered by `index`.
struct ChoiceJob: Sendable {
    var index: Int
    var request: GenerationRequest
    var stops: [String]
}

/// Runs choices on the engine and merges their events into one stream. When the consumer
/// stops listening (client gone) every request is aborted, which frees its KV blocks at once.
enum ChoiceGeneration {
    /// Choices under way: their merged events, and `cancel`, which aborts every one still
    /// running (called when the response ends, for whatever reason).
    struct Started: Sendable {
        var events: AsyncThrowingStream<(Int, ChoiceEvent), any Error>
        var cancel: @Sendable () -> Void
    }

    /// Submits every job (all or none: a refusal aborts those already queued and throws), then
    /// streams `(index, event)` pairs until every choice has finished.
    static func start(_ jobs: [ChoiceJob], service: any InferenceService, tokenizer: Tokenizer, metrics: ServingMetrics,
                      arrival: ContinuousClock.Instant,
                      submit: ((GenerationRequest) throws -> AsyncStream<GenerationEvent>)? = nil) throws(OpenAIError) -> Started {
        var streams: [AsyncStream<GenerationEvent>] = []
        do {
            for job in jobs { streams.append(try submit?(job.request) ?? service.submit(job.request)) }
        } catch {
            for job in jobs.prefix(streams.count) { service.abort(requestID: job.request.id) }
            if let admission = error as? AdmissionError { throw OpenAIError(admission) }
            if let openAI = error as? OpenAIError { throw openAI }
            if let refusal = error as? KVImportError {
                throw OpenAIError(status: .serviceUnavailable, message: refusal.description, type: "pd_transfer_error",
                                  code: "pd_reservation_refused")
            }
            throw OpenAIError.internalError("\(error)")
        }
        let (output, continuation) = AsyncThrowingStream<(Int, ChoiceEvent), any Error>.makeStream()
        let engineStreams = streams
        let task = Task {
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (job, stream) in zip(jobs, engineStreams) {
                        group.addTask {
                            try await run(job, stream: stream, service: service, tokenizer: tokenizer, metrics: metrics,
                                          arrival: arrival) { continuation.yield((job.index, $0)) }
                        }
                    }
                    try await group.waitForAll()
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        let cancel: @Sendable () -> Void = {
            task.cancel()
            // Harmless for requests that already finished: unknown ids are ignored.
            for job in jobs { service.abort(requestID: job.request.id) }
        }
        continuation.onTermination = { _ in cancel() }
        return Started(events: output, cancel: cancel)
    }

    /// Consumes one engine stream: detokenizes, holds back possible stop strings, aborts the
    /// request when one matches.
    static func run(_ job: ChoiceJob, stream: AsyncStream<GenerationEvent>, service: any InferenceService,
                    tokenizer: Tokenizer, metrics: ServingMetrics, arrival: ContinuousClock.Instant,
                    emit: (ChoiceEvent) -> Void) async throws {
        var detokenizer = IncrementalDetokenizer(tokenizer: tokenizer, skipSpecial: true)
        var matcher = StopStringMatcher(job.stops)
        var pending: [SampledToken] = []
        var firstToken: ContinuousClock.Instant?
        /// Tokens up to and including the one that completed a stop string (usage counts those).
        var usedTokens = 0
        func seconds(_ duration: Duration) -> Double {
            Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
        }
        for await event in stream {
            switch event {
            case .promptLogprobs(let logprobs):
                emit(.promptLogprobs(logprobs))
            case .token(let token):
                if firstToken == nil { firstToken = .now }
                guard matcher.matched == nil else { continue }
                usedTokens += 1
                pending.append(token)
                let text = matcher.append(detokenizer.append(token.token))
                if matcher.matched != nil {
                    service.abort(requestID: job.request.id)
                }
                if !text.isEmpty || matcher.matched != nil {
                    emit(.text(text, tokens: pending))
                    pending.removeAll()
                }
            case .finished(let reason, var statistics):
                if matcher.matched == nil {
                    let rest = matcher.append(detokenizer.finish()) + matcher.finish()
                    if !rest.isEmpty || !pending.isEmpty { emit(.text(rest, tokens: pending)) }
                }
                let finishReason = matcher.matched != nil ? "stop" : reason.rawValue
                if matcher.matched != nil { statistics.outputTokens = min(statistics.outputTokens, usedTokens) }
                let now = ContinuousClock.now
                metrics.recordRequest(timeToFirstToken: firstToken.map { seconds($0 - arrival) }, endToEnd: seconds(now - arrival),
                                      outputTokens: statistics.outputTokens, queueSeconds: statistics.queueSeconds)
                emit(.finished(reason: finishReason, statistics: statistics))
                return
            case .failed(let message):
                throw OpenAIError.internalError("The engine failed this request: \(message)")
            }
        }
        // The stream ended without `finished`: this task was cancelled (the client left).
        try Task.checkCancellation()
        throw OpenAIError.internalError("The engine ended the request without finishing it.")
    }
}
