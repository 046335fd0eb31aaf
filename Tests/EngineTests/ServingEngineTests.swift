import Engine
import Foundation
import Testing
import TestSupport
import Tokenization

/// What one request's stream delivered.
struct ServedOutcome: Sendable {
    var tokens: [Int32] = []
    var finish: FinishReason?
    var statistics: RequestStatistics?
    var failure: String?
    var promptLogprobs: [PromptTokenLogprob?]?
    var eventsAfterEnd = 0

    static func collect(_ stream: AsyncStream<GenerationEvent>) async -> ServedOutcome {
        var outcome = ServedOutcome()
        for await event in stream {
            if outcome.finish != nil || outcome.failure != nil { outcome.eventsAfterEnd += 1 }
            switch event {
            case .promptLogprobs(let logprobs): outcome.promptLogprobs = logprobs
            case .token(let sampled): outcome.tokens.append(sampled.token)
            case .finished(let reason, let statistics):
                outcome.finish = reason
                outcome.statistics = statistics
            case .failed(let message): outcome.failure = message
            }
        }
        return outcome
    }
}

/// The serving engine on the real default model: continuous batching, preemption and the
/// prefix cache must not change a single greedy token compared with the request run alone
/// (`Generator`, one sequence in its own cache), and every path that ends a request early
/// gives its KV blocks back.
@Suite(.serialized) struct ServingEngineTests {
    static let subjects = ["France", "Japan", "Brazil", "Kenya", "Canada", "Italy", "Egypt", "India"]
    static let forms = [
        "The capital of %@ is",
        "Write one sentence about %@:",
        "Q: What language is spoken in %@?\nA:",
        "Three cities in %@:\n1.",
        "Here is a short story for children about a small robot who learns to paint in %@. Once upon a time,",
        "%@ is famous for",
        "The weather in %@ in winter is usually",
        "A traveller's guide to %@, chapter one. The first thing you notice when you arrive is",
    ]

    let generator: Generator

    init() throws {
        generator = try Generator(modelPath: defaultModelPath(), threads: 2)
    }

    /// Greedy requests over the 64 prompts (every subject in every form), of varied lengths.
    func requests(count: Int = 64, maxTokens: (Int) -> Int = { 4 + $0 % 7 }) -> [GenerationRequest] {
        (0..<count).map { i in
            let text = Self.forms[i % Self.forms.count].replacingOccurrences(
                of: "%@", with: Self.subjects[(i / Self.forms.count) % Self.subjects.count])
            return GenerationRequest(id: "r\(i)", promptTokens: generator.tokens(forPrompt: text, rendered: false),
                                     maxTokens: maxTokens(i))
        }
    }

    /// Each request run alone through `Generator`: its tokens and finish reason.
    func alone(_ requests: [GenerationRequest]) throws -> [(tokens: [Int32], finish: FinishReason)] {
        try requests.map { request in
            let result = try generator.generate(promptTokens: request.promptTokens, maxTokens: request.maxTokens,
                                                sampling: .greedy)
            return (result.tokens, result.finishReason == .endOfGeneration ? .stop : .length)
        }
    }

    func makeEngine(_ change: (inout ServingConfiguration) -> Void = { _ in }) throws -> ServingEngine {
        var configuration = ServingConfiguration()
        configuration.threads = 2
        configuration.numBlocksOverride = 256
        change(&configuration)
        return try ServingEngine(modelPath: defaultModelPath(), configuration: configuration)
    }

    /// Submits all requests at once, then collects every stream concurrently.
    func serve(_ requests: [GenerationRequest], on engine: ServingEngine) async throws -> [ServedOutcome] {
        let streams = try requests.map { try engine.submit($0) }
        return await withTaskGroup(of: (Int, ServedOutcome).self) { group in
            for (index, stream) in streams.enumerated() {
                group.addTask { (index, await ServedOutcome.collect(stream)) }
            }
            var outcomes = [ServedOutcome](repeating: ServedOutcome(), count: streams.count)
            for await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes
        }
    }

    func expectIdle(_ engine: ServingEngine, _ comment: Comment? = nil) {
        let load = engine.load()
        #expect(load.runningRequests == 0, comment)
        #expect(load.waitingRequests == 0, comment)
        #expect(load.kvBlocksFree == load.kvBlocksTotal, comment)
        #expect(load.kvBlocksUsed == 0, comment)
    }

    func expectSameAsAlone(_ outcomes: [ServedOutcome], _ requests: [GenerationRequest]) throws {
        let expected = try alone(requests)
        for (index, outcome) in outcomes.enumerated() {
            #expect(outcome.tokens == expected[index].tokens, "request \(index)")
            #expect(outcome.finish == expected[index].finish, "request \(index)")
            #expect(outcome.failure == nil && outcome.eventsAfterEnd == 0, "request \(index)")
            #expect(outcome.statistics?.outputTokens == outcome.tokens.count, "request \(index)")
            #expect(outcome.statistics?.promptTokens == requests[index].promptTokens.count, "request \(index)")
        }
    }

    /// Waits until `condition` holds; records `what` if it never does.
    func eventually(_ what: Comment, _ condition: () -> Bool) async throws {
        if !(await waitUntil(condition)) { Issue.record("timed out waiting until \(what)") }
    }

    @Test func sixtyFourConcurrentRequestsEachEqualTheRequestRunAlone() async throws {
        // A small token budget makes prompt chunks share steps with other sequences' decodes.
        let engine = try makeEngine {
            $0.maxNumSeqs = 8
            $0.maxNumBatchedTokens = 40
        }
        defer { engine.shutdown() }
        #expect(engine.isServing)
        let requests = requests()
        let outcomes = try await serve(requests, on: engine)
        try expectSameAsAlone(outcomes, requests)
        let counters = engine.counters()
        #expect(counters.finishedRequests == 64)
        #expect(counters.generationTokens == outcomes.reduce(0) { $0 + $1.tokens.count })
        #expect(counters.promptTokens == requests.reduce(0) { $0 + $1.promptTokens.count })
        #expect(counters.preemptions == 0)
        expectIdle(engine)
    }

    @Test func gtsfAdmissionLeavesEveryOutputEqualToTheRequestRunAlone() async throws {
        // Short and long prompts queued behind a small batch, in a pool small enough to
        // preempt; a short ageing bound lets long prompts overtake by age as well.
        let engine = try makeEngine {
            $0.maxNumSeqs = 3
            $0.maxNumBatchedTokens = 48
            $0.numBlocksOverride = 24
            $0.prefillBatchingPolicy = .gtsf
            $0.prefillBatchingMaxWait = 0.05
        }
        defer { engine.shutdown() }
        var requests = requests(count: 16) { 6 + $0 % 9 }
        for i in 0..<4 {
            let text = Array(repeating: Self.forms[i % 2 == 0 ? 4 : 7].replacingOccurrences(of: "%@", with: Self.subjects[i]),
                             count: 6).joined(separator: " ")
            let tokens = generator.tokens(forPrompt: text, rendered: false)
            requests.insert(GenerationRequest(id: "long\(i)", promptTokens: tokens, maxTokens: 8), at: i * 4)
        }
        #expect(requests.filter { $0.promptTokens.count > 100 }.count == 4)
        let outcomes = try await serve(requests, on: engine)
        try expectSameAsAlone(outcomes, requests)
        #expect(engine.counters().finishedRequests == requests.count)
        expectIdle(engine)
    }

    @Test func preemptionUnderATinyPoolLeavesOutputsUnchanged() async throws {
        // 6 blocks of 16 tokens for 8 running sequences that each grow past a block boundary.
        let engine = try makeEngine {
            $0.maxNumSeqs = 8
            $0.numBlocksOverride = 6
        }
        defer { engine.shutdown() }
        let requests = requests(count: 24) { 12 + $0 % 5 }
        let outcomes = try await serve(requests, on: engine)
        try expectSameAsAlone(outcomes, requests)
        let counters = engine.counters()
        #expect(counters.preemptions > 0)
        #expect(outcomes.reduce(0) { $0 + ($1.statistics?.preemptions ?? 0) } == counters.preemptions)
        #expect(counters.finishedRequests == 24)
        expectIdle(engine)
    }

    @Test func repeatedLongPrefixIsServedFromThePrefixCache() async throws {
        let engine = try makeEngine()
        defer { engine.shutdown() }
        let prefix = String(repeating: "The museum keeps old maps, letters and paintings from the harbour town. ", count: 6)
        func request(_ id: String, _ question: String) -> GenerationRequest {
            GenerationRequest(id: id, promptTokens: generator.tokens(forPrompt: prefix + question, rendered: false), maxTokens: 6)
        }
        let first = request("first", "What does the museum keep?")
        let second = request("second", "Where is the museum?")
        let shared = zip(first.promptTokens, second.promptTokens).prefix { $0 == $1 }.count
        #expect(shared >= 64)

        let a = try await serve([first], on: engine)
        #expect(a[0].statistics?.cachedPromptTokens == 0)
        #expect(engine.counters().prefixCacheHits == 0)
        let b = try await serve([second], on: engine)
        #expect(b[0].statistics?.cachedPromptTokens == shared / 16 * 16)
        let again = try await serve([first], on: engine)
        #expect(again[0].statistics?.cachedPromptTokens == (first.promptTokens.count - 1) / 16 * 16)
        let counters = engine.counters()
        #expect(counters.prefixCacheHits == shared / 16 * 16 + (first.promptTokens.count - 1) / 16 * 16)
        #expect(counters.prefixCacheQueries == 2 * first.promptTokens.count + second.promptTokens.count)
        try expectSameAsAlone(a + b + again, [first, second, first])
        expectIdle(engine)

        #expect(engine.flushPrefixCache())
        let flushed = try await serve([first], on: engine)
        #expect(flushed[0].statistics?.cachedPromptTokens == 0)
        #expect(flushed[0].tokens == a[0].tokens)
        expectIdle(engine)
    }

    @Test func abortFreesEveryBlockOfARunningAndAWaitingRequest() async throws {
        let engine = try makeEngine { $0.maxNumSeqs = 1 }
        defer { engine.shutdown() }
        let start = engine.load()
        let prompt = generator.tokens(forPrompt: "Tell me a long story about the sea.", rendered: false)
        let running = try engine.submit(GenerationRequest(id: "running", promptTokens: prompt, maxTokens: 200, ignoreEOS: true))
        let waiting = try engine.submit(GenerationRequest(id: "waiting", promptTokens: prompt, maxTokens: 200, ignoreEOS: true))
        var iterator = running.makeAsyncIterator()
        var received = 0
        while received < 3, let event = await iterator.next() {
            if case .token = event { received += 1 }
        }
        #expect(received == 3)
        #expect(engine.load().waitingRequests == 1)
        #expect(engine.load().kvBlocksUsed > 0)

        engine.abort(requestID: "waiting")
        let waited = await ServedOutcome.collect(waiting)
        #expect(waited.finish == .abort && waited.tokens.isEmpty)
        engine.abort(requestID: "running")
        var rest: [GenerationEvent] = []
        while let event = await iterator.next() { rest.append(event) }
        guard case .finished(.abort, let statistics)? = rest.last else {
            Issue.record("the aborted request did not end with finished(.abort): \(rest)")
            return
        }
        #expect(statistics.outputTokens >= 3 && statistics.outputTokens < 200)
        engine.abort(requestID: "running")  // already gone: ignored
        engine.abort(requestID: "never-submitted")
        #expect(engine.counters().abortedRequests == 2)
        #expect(engine.load() == start)

        // Still serving afterwards.
        let after = try await serve([GenerationRequest(id: "after", promptTokens: prompt, maxTokens: 2, ignoreEOS: true)], on: engine)
        #expect(after[0].finish == .length && after[0].tokens.count == 2)
        expectIdle(engine)
    }

    @Test func aCancelledConsumerAbortsItsRequest() async throws {
        let engine = try makeEngine()
        defer { engine.shutdown() }
        let stream = try engine.submit(GenerationRequest(
            id: "gone", promptTokens: generator.tokens(forPrompt: "Once upon a time", rendered: false),
            maxTokens: 500, ignoreEOS: true))
        let consumer = Task {
            var tokens = 0
            for await event in stream { if case .token = event { tokens += 1 } }
            return tokens
        }
        try await eventually("the request runs") { engine.counters().generationTokens >= 2 }
        consumer.cancel()
        _ = await consumer.value
        try await eventually("the request is aborted") { engine.counters().abortedRequests == 1 }
        expectIdle(engine)
    }

    @Test func requestsThatCanNeverBeServedAreRefusedWithTheNumbers() async throws {
        let engine = try makeEngine {
            $0.maxModelLength = 64
            $0.numBlocksOverride = 3
            $0.maxNumSeqs = 1
            $0.maxWaitingRequests = 1
        }
        defer { engine.shutdown() }
        let start = engine.load()
        func refusal(_ request: GenerationRequest) -> String? {
            do {
                _ = try engine.submit(request)
                return nil
            } catch { return "\(error)" }
        }
        let tokens = { (count: Int) in (0..<count).map { Int32(100 + $0) } }
        #expect(refusal(GenerationRequest(id: "long", promptTokens: tokens(60), maxTokens: 10))
            == "This model's maximum context length is 64 tokens. However, you requested 70 tokens (60 in the prompt, 10 for the completion). Please reduce the length of the prompt or max_tokens.")
        #expect(refusal(GenerationRequest(id: "big", promptTokens: tokens(40), maxTokens: 20))
            == "the request needs 4 KV cache blocks but the whole pool has 3")
        #expect(refusal(GenerationRequest(id: "empty", promptTokens: [], maxTokens: 1))
            == "the prompt is empty (no tokens)")
        #expect(refusal(GenerationRequest(id: "vocab", promptTokens: [1, 49152], maxTokens: 1))
            == "prompt token id 49152 is outside the vocabulary (0..<49152)")
        #expect(refusal(GenerationRequest(id: "bias", promptTokens: [1], maxTokens: 1, logitBias: [-1: 5]))
            == "logit_bias token id -1 is outside the vocabulary (0..<49152)")
        #expect(refusal(GenerationRequest(id: "temperature", promptTokens: [1], maxTokens: 1,
                                          sampling: SamplingParameters(temperature: -1)))
            == "invalid sampling parameter temperature = -1.0: must be a finite number >= 0")
        #expect(refusal(GenerationRequest(id: "negative", promptTokens: [1], maxTokens: -1))
            == "max_tokens must be at least 0 (got -1)")
        // Exactly at the limits is fine: 48 positions need 3 blocks (the last token's KV is never stored).
        let fits = try await serve([GenerationRequest(id: "fits", promptTokens: tokens(40), maxTokens: 9)], on: engine)
        #expect(fits[0].finish != nil && fits[0].failure == nil)

        // One running, one waiting, the next refused.
        let first = try engine.submit(GenerationRequest(id: "a", promptTokens: tokens(5), maxTokens: 40, ignoreEOS: true))
        try await eventually("the first request runs") { engine.load().runningRequests == 1 }
        #expect(refusal(GenerationRequest(id: "a", promptTokens: tokens(5), maxTokens: 1))
            == "a request with id 'a' is already in flight")
        let second = try engine.submit(GenerationRequest(id: "b", promptTokens: tokens(5), maxTokens: 2))
        #expect(refusal(GenerationRequest(id: "c", promptTokens: tokens(5), maxTokens: 2))
            == "the server is busy: 1 requests are waiting (limit 1); retry later")
        engine.beginDrain()
        #expect(!engine.isServing)
        #expect(refusal(GenerationRequest(id: "d", promptTokens: tokens(5), maxTokens: 2))
            == "the engine is not serving: draining")
        // Draining finishes what was admitted.
        let outcomes = await [ServedOutcome.collect(first), ServedOutcome.collect(second)]
        #expect(outcomes[0].finish == .length && outcomes[0].tokens.count == 40)
        #expect(outcomes[1].finish != nil && outcomes[1].failure == nil)
        #expect(engine.load() == start)
    }

    @Test func promptLogprobsAreTheLogSoftmaxOfEveryPromptPosition() async throws {
        let engine = try makeEngine()
        defer { engine.shutdown() }
        // Longer than one logits chunk (128 positions), so it is delivered across steps.
        let text = String(repeating: "A quiet river runs through the valley past the mill. ", count: 14)
        let prompt = generator.tokens(forPrompt: text, rendered: false)
        #expect(prompt.count > 140)
        // Cache the prompt first: a request for prompt logprobs must not use the cached blocks.
        _ = try await serve([GenerationRequest(id: "warm", promptTokens: prompt, maxTokens: 1)], on: engine)
        let outcome = try await serve(
            [GenerationRequest(id: "echo", promptTokens: prompt, maxTokens: 1, promptLogprobs: 3)], on: engine)[0]
        #expect(outcome.statistics?.cachedPromptTokens == 0)
        guard let logprobs = outcome.promptLogprobs else {
            Issue.record("no prompt logprobs")
            return
        }
        #expect(logprobs.count == prompt.count)
        #expect(logprobs[0] == nil)

        let transformer = Transformer(weights: generator.weights, backend: try CPUBackend(threads: 2))
        let cache = try transformer.makeCache(numBlocks: (prompt.count + 15) / 16)
        let logits = try transformer.forward(ForwardBatch([SequenceChunk(
            tokens: prompt, startPosition: 0, blockTable: (0..<Int32(cache.layout.numBlocks)).map { $0 },
            logits: .allTokens)]), cache: cache)
        var worst = 0.0
        for position in 1..<prompt.count {
            let row = logits[position - 1].map(Double.init)
            let maximum = row.max()!
            let logSum = maximum + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - maximum) })
            guard let entry = logprobs[position] else {
                Issue.record("position \(position) has no logprob")
                continue
            }
            #expect(entry.token == prompt[position])
            worst = max(worst, abs(Double(entry.logprob) - (row[Int(prompt[position])] - logSum)))
            #expect(entry.topLogprobs.count == 3)
            let best = row.indices.max { row[$0] < row[$1] }!
            #expect(entry.topLogprobs.first?.token == Int32(best))
            #expect(entry.topLogprobs.map(\.logprob) == entry.topLogprobs.map(\.logprob).sorted(by: >))
        }
        #expect(worst < 1e-4, "largest logprob error \(worst)")
        expectIdle(engine)
    }

    @Test func stopTokensLogitBiasIgnoreEOSAndZeroMaxTokens() async throws {
        let engine = try makeEngine()
        defer { engine.shutdown() }
        let prompt = generator.tokens(forPrompt: "The capital of France is", rendered: false)
        let plain = try await serve([GenerationRequest(id: "plain", promptTokens: prompt, maxTokens: 3)], on: engine)[0]
        #expect(plain.tokens.count == 3)

        let stopped = try await serve([GenerationRequest(
            id: "stop", promptTokens: prompt, maxTokens: 3, stopTokenIDs: [plain.tokens[1]])], on: engine)[0]
        #expect(stopped.tokens == [plain.tokens[0]] && stopped.finish == .stop)

        let biased = try await serve([GenerationRequest(
            id: "bias", promptTokens: prompt, maxTokens: 3, logitBias: [42: 100])], on: engine)[0]
        #expect(biased.tokens == [42, 42, 42] && biased.finish == .length)

        let none = try await serve([GenerationRequest(id: "zero", promptTokens: prompt, maxTokens: 0)], on: engine)[0]
        #expect(none.tokens.isEmpty && none.finish == .length)

        let chat = generator.tokens(forPrompt: try generator.chatPrompt(
            [.init(role: "user", content: "Say hello.")], template: try generator.modelChatTemplate()), rendered: true)
        let ended = try await serve([GenerationRequest(id: "eos", promptTokens: chat, maxTokens: 60)], on: engine)[0]
        #expect(ended.finish == .stop)
        let through = try await serve([GenerationRequest(
            id: "through", promptTokens: chat, maxTokens: ended.tokens.count + 2, ignoreEOS: true)], on: engine)[0]
        #expect(through.finish == .length)
        #expect(Array(through.tokens.prefix(ended.tokens.count)) == ended.tokens)
        #expect(through.tokens.count == ended.tokens.count + 2)
        #expect(generator.tokenizer.endOfGenerationTokens.contains(through.tokens[ended.tokens.count]))
        expectIdle(engine)
    }

    @Test func seededSamplingIsTheSameBatchedAndAlone() async throws {
        let engine = try makeEngine { $0.maxNumSeqs = 8 }
        defer { engine.shutdown() }
        let requests = requests(count: 8) { _ in 8 }.enumerated().map { index, request in
            var request = request
            request.sampling = SamplingParameters(temperature: 0.9, topP: 0.95, seed: 1000 + UInt64(index))
            return request
        }
        let batched = try await serve(requests, on: engine)
        for (index, request) in requests.enumerated() {
            let single = try await serve([request], on: engine)[0]
            #expect(single.tokens == batched[index].tokens, "request \(index)")
        }
        expectIdle(engine)
    }

    /// A half-precision cache takes half the bytes per block and keeps batch invariance:
    /// batched, preempted or alone, a request gets the same tokens.
    @Test func float16CacheGivesTheSameTokensBatchedAsAlone() async throws {
        let engine = try makeEngine {
            $0.maxNumSeqs = 8
            $0.numBlocksOverride = 6
            $0.kvCacheDataType = .float16
            $0.enablePrefixCaching = false
        }
        defer { engine.shutdown() }
        #expect(engine.cacheLayout.bytesPerBlock == 737_280 / 2)
        let requests = requests(count: 12) { 12 + $0 % 5 }
        let batched = try await serve(requests, on: engine)
        #expect(engine.counters().preemptions > 0)
        for (index, request) in requests.enumerated() {
            let single = try await serve([request], on: engine)[0]
            #expect(single.tokens == batched[index].tokens && single.finish == batched[index].finish, "request \(index)")
        }
        expectIdle(engine)
    }

    @Test func invalidConfigurationsAreRejected() throws {
        func message(_ change: (inout ServingConfiguration) -> Void) -> String? {
            do {
                let engine = try makeEngine(change)
                engine.shutdown()
                return nil
            } catch { return "\(error)" }
        }
        #expect(message { $0.maxNumSeqs = 0 } == "invalid serving configuration: max-num-seqs must be at least 1 (got 0)")
        #expect(message {
            $0.maxNumSeqs = 8
            $0.maxNumBatchedTokens = 4
        } == "invalid serving configuration: max-num-batched-tokens (4) must be at least max-num-seqs (8)")
        #expect(message { $0.maxModelLength = 1_000_000 }
            == "invalid serving configuration: max-model-len must be in 1...8192, the model's context length (got 1000000)")
        #expect(message {
            $0.numBlocksOverride = nil
            $0.kvCacheMemoryBytes = 1000
        } == "invalid serving configuration: kv-cache-memory of 1000 bytes holds no KV block (737280 bytes each)")
        #expect(message { $0.prefillBatchingMaxWait = -1 }
            == "invalid serving configuration: prefill-batching-max-wait must be in 0...1e9 seconds (got -1.0)")
    }
}
