import Foundation
import Tokenization

/// The serving engine: many requests at once over one model and one paged KV cache, with
/// continuous batching (`Scheduler`), prefix caching (`BlockManager`) and an engine loop on a
/// thread of its own (the forward pass blocks it). Requests come in through `submit`; their
/// tokens go out through the returned streams as each step produces them.
///
/// The loop runs until `shutdown()`; an engine is not freed before that.
public final class ServingEngine: InferenceService, PromptBuilding, @unchecked Sendable {
    // @unchecked Sendable: every mutable stored property (the scheduler and the sequences it
    // holds, the request table, the flags) is read and written only while holding `condition`.
    // `transformer` and `cache` are used only by the engine thread, which releases the lock
    // during a forward pass; blocks of the sequences in that step (`inStep`) are not freed
    // until the step is over.

    public let weights: ModelWeights
    public let tokenizer: Tokenizer
    public let modelConfig: ModelConfig
    public let configuration: ServingConfiguration
    /// Prompt plus output tokens a request may reach.
    public let maxModelLength: Int
    public let cacheLayout: KVCacheLayout

    private let transformer: Transformer
    let cache: KVCache
    let condition = NSCondition()
    var scheduler: Scheduler
    var sequences: [String: SequenceState] = [:]
    private var nextSerial: UInt64 = 0
    private var draining = false
    private var stopping = false
    private var loopRunning = false
    /// PD decode side (`KVImport.swift`): connections writing into a reservation's blocks, by
    /// serial; blocks of a reservation that ended while pinned wait here until the last unpin.
    var importPins: [UInt64: Int] = [:]
    var deferredReleases: [UInt64: [Int32]] = [:]
    /// PD prefill side (`KVExport.swift`): blocks of finished exports, kept until D confirms.
    var heldExports: [String: [Int32]] = [:]

    public convenience init(modelPath: String, configuration: ServingConfiguration) throws {
        try self.init(weights: try ModelWeights(path: modelPath), configuration: configuration)
    }

    public init(weights: ModelWeights, configuration: ServingConfiguration) throws {
        self.weights = weights
        self.configuration = configuration
        modelConfig = weights.config
        tokenizer = try Tokenizer(gguf: weights.file)
        maxModelLength = try Self.validate(configuration, contextLength: modelConfig.contextLength)
        let perBlock = KVCacheLayout(config: modelConfig, blockSize: configuration.blockSize, numBlocks: 1,
                                     dataType: configuration.kvCacheDataType).bytesPerBlock
        let numBlocks = configuration.numBlocksOverride ?? configuration.kvCacheMemoryBytes / perBlock
        guard numBlocks >= 1 else {
            throw EngineError.invalidServingConfiguration(
                "kv-cache-memory of \(configuration.kvCacheMemoryBytes) bytes holds no KV block (\(perBlock) bytes each)")
        }
        cacheLayout = KVCacheLayout(config: modelConfig, blockSize: configuration.blockSize, numBlocks: numBlocks,
                                    dataType: configuration.kvCacheDataType)
        cache = try KVCache(layout: cacheLayout, shared: configuration.sharedKVCache)
        transformer = Transformer(weights: weights, backend: try CPUBackend(threads: configuration.threads))
        scheduler = Scheduler(
            maxNumSeqs: configuration.maxNumSeqs, maxNumBatchedTokens: configuration.maxNumBatchedTokens,
            blocks: BlockManager(numBlocks: numBlocks, blockSize: configuration.blockSize,
                                 enablePrefixCaching: configuration.enablePrefixCaching),
            admissionOrder: AdmissionOrder(policy: configuration.prefillBatchingPolicy,
                                           maxWaitNanoseconds: UInt64(configuration.prefillBatchingMaxWait * 1e9)))
        loopRunning = true
        let thread = Thread { [self] in runLoop() }
        thread.name = "tandem-engine"
        thread.stackSize = 8 << 20
        thread.start()
    }

    private static func validate(_ c: ServingConfiguration, contextLength: Int) throws -> Int {
        func check(_ ok: Bool, _ message: @autoclosure () -> String) throws {
            if !ok { throw EngineError.invalidServingConfiguration(message()) }
        }
        try check(c.maxNumSeqs >= 1, "max-num-seqs must be at least 1 (got \(c.maxNumSeqs))")
        try check(c.maxNumBatchedTokens >= 1, "max-num-batched-tokens must be at least 1 (got \(c.maxNumBatchedTokens))")
        // Otherwise some running sequences could not decode in a step and would starve.
        try check(c.maxNumBatchedTokens >= c.maxNumSeqs,
                  "max-num-batched-tokens (\(c.maxNumBatchedTokens)) must be at least max-num-seqs (\(c.maxNumSeqs))")
        try check(c.maxWaitingRequests >= 0, "the waiting-queue limit must be >= 0 (got \(c.maxWaitingRequests))")
        try check(c.threads >= 1, "threads must be at least 1 (got \(c.threads))")
        try check(c.prefillBatchingMaxWait >= 0 && c.prefillBatchingMaxWait <= 1e9,
                  "prefill-batching-max-wait must be in 0...1e9 seconds (got \(c.prefillBatchingMaxWait))")
        try check((1...KVCache.maxBlockSize).contains(c.blockSize),
                  "block-size must be in 1...\(KVCache.maxBlockSize) (got \(c.blockSize))")
        if let blocks = c.numBlocksOverride {
            try check(blocks >= 1, "num-gpu-blocks-override must be at least 1 (got \(blocks))")
        }
        let length = c.maxModelLength ?? contextLength
        try check(length >= 1 && length <= contextLength,
                  "max-model-len must be in 1...\(contextLength), the model's context length (got \(length))")
        return length
    }

    // MARK: InferenceService

    public func submit(_ request: GenerationRequest) throws -> AsyncStream<GenerationEvent> {
        condition.lock()
        defer { condition.unlock() }
        let (stream, sequence) = try admit(request)
        scheduler.enqueue(sequence)
        condition.broadcast()
        return stream
    }

    /// Checks and registers a request (lock held); the caller queues it or holds it.
    func admit(_ request: GenerationRequest) throws -> (AsyncStream<GenerationEvent>, SequenceState) {
        guard loopRunning, !stopping else { throw AdmissionError.notServing("the engine loop has stopped") }
        guard !draining else { throw AdmissionError.notServing("draining") }
        try admissionCheck(request)
        let sampler: Sampler
        do { sampler = try Sampler(parameters: request.sampling) } catch {
            throw AdmissionError.invalid("\(error)")
        }
        guard sequences[request.id] == nil else {
            throw AdmissionError.invalid("a request with id '\(request.id)' is already in flight")
        }
        let waiting = scheduler.waiting.count
        guard waiting < configuration.maxWaitingRequests else {
            throw AdmissionError.queueFull(waiting: waiting, limit: configuration.maxWaitingRequests)
        }

        let (stream, continuation) = AsyncStream.makeStream(of: GenerationEvent.self)
        let serial = nextSerial
        nextSerial += 1
        let id = request.id
        continuation.onTermination = { [weak self] termination in
            // The consumer stopped listening (client gone): end the request. Asynchronously,
            // because this may run inside `finish()` on a thread holding the lock.
            guard case .cancelled = termination, let self else { return }
            DispatchQueue.global().async { self.abort(requestID: id, serial: serial) }
        }
        let sequence = SequenceState(serial: serial, request: request, sampler: sampler, continuation: continuation)
        sequences[id] = sequence
        return (stream, sequence)
    }

    /// Throws the `AdmissionError` that refuses `request`, if any.
    private func admissionCheck(_ request: GenerationRequest) throws {
        let prompt = request.promptTokens.count, vocabulary = modelConfig.vocabSize
        guard prompt > 0 else { throw AdmissionError.invalid("the prompt is empty (no tokens)") }
        if let bad = request.promptTokens.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
            throw AdmissionError.invalid("prompt token id \(bad) is outside the vocabulary (0..<\(vocabulary))")
        }
        if let bad = request.logitBias.keys.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
            throw AdmissionError.invalid("logit_bias token id \(bad) is outside the vocabulary (0..<\(vocabulary))")
        }
        guard request.maxTokens >= 0 else {
            throw AdmissionError.invalid("max_tokens must be at least 0 (got \(request.maxTokens))")
        }
        if let top = request.promptLogprobs, !(0...SamplingParameters.maxLogprobs).contains(top) {
            throw AdmissionError.invalid("prompt logprobs must be in 0...\(SamplingParameters.maxLogprobs) (got \(top))")
        }
        guard prompt + request.maxTokens <= maxModelLength else {
            throw AdmissionError.tooLong(promptTokens: prompt, maxTokens: request.maxTokens, maxModelLength: maxModelLength)
        }
        // The last token generated is never fed back, so it needs no KV.
        let needed = cacheLayout.blocksNeeded(forTokens: prompt + max(0, request.maxTokens - 1))
        guard needed <= cacheLayout.numBlocks else {
            throw AdmissionError.exceedsCachePool(blocksNeeded: needed, blocksTotal: cacheLayout.numBlocks)
        }
    }

    public func abort(requestID: String) {
        abort(requestID: requestID, serial: nil)
    }

    private func abort(requestID: String, serial: UInt64?) {
        condition.lock()
        defer { condition.unlock() }
        guard let sequence = sequences[requestID], serial == nil || sequence.serial == serial else { return }
        if sequence.inStep {
            sequence.abortRequested = true
        } else {
            finish(sequence, .abort)
        }
    }

    public func load() -> EngineLoad {
        condition.lock()
        defer { condition.unlock() }
        let blocks = scheduler.blocks
        return EngineLoad(runningRequests: scheduler.running.count, waitingRequests: scheduler.waiting.count,
                          kvBlocksTotal: blocks.numBlocks, kvBlocksUsed: blocks.usedCount,
                          kvBlocksFree: blocks.freeCount, blockSize: blocks.blockSize)
    }

    public func counters() -> EngineCounters {
        condition.lock()
        defer { condition.unlock() }
        return scheduler.counters
    }

    public var isServing: Bool {
        condition.lock()
        defer { condition.unlock() }
        return loopRunning && !stopping && !draining
    }

    public func beginDrain() {
        condition.lock()
        draining = true
        condition.unlock()
    }

    public func flushPrefixCache() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard scheduler.running.isEmpty else { return false }
        scheduler.blocks.flushUnused()
        return true
    }

    /// Ends every request (`finished(.abort, …)`) and stops the engine thread; returns once it
    /// has stopped. The engine serves nothing afterwards.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while loopRunning { condition.wait() }
        condition.unlock()
    }

    // MARK: The engine loop

    private func runLoop() {
        condition.lock()
        while true {
            while !stopping && scheduler.isIdle { condition.wait() }
            if stopping { break }
            let step = scheduler.schedule()
            if step.sequences.isEmpty {
                // Nothing fits although nothing runs: admission rules this out; fail the head
                // rather than spin.
                if scheduler.running.isEmpty, let head = scheduler.waiting.first {
                    fail(head, "the request could not be scheduled (\(scheduler.blocks.freeCount) of \(scheduler.blocks.numBlocks) KV blocks free)")
                }
                continue
            }
            for sequence in step.sequences { sequence.inStep = true }
            let plan = exportPlan(step)
            let exports = plan.filter { !$0.blocks.isEmpty }
            var afterLayer: ((Int) -> Void)?
            if !exports.isEmpty {
                afterLayer = { layer in
                    for export in exports { export.sink.layerReady(layer, firstBlockIndex: export.firstIndex, blocks: export.blocks) }
                }
            }
            condition.unlock()
            for export in plan where export.starts { export.sink.prefillStarting() }
            let hook = afterLayer
            let result = Result { try transformer.forward(step.batch, cache: cache, afterLayerStored: hook) }
            condition.lock()
            for sequence in step.sequences { sequence.inStep = false }
            switch result {
            case .failure(let error):
                for sequence in step.sequences { fail(sequence, "\(error)") }
            case .success(let logits):
                scheduler.completed(step)
                process(step, logits: logits)
            }
        }
        for sequence in Array(sequences.values) { finish(sequence, .abort) }
        loopRunning = false
        condition.broadcast()
        condition.unlock()
    }

    /// Prompt log-probabilities, sampling and stop conditions after a step.
    private func process(_ step: Scheduler.Step, logits: Logits) {
        var rowBase = 0
        for (index, sequence) in step.sequences.enumerated() {
            let chunk = step.batch.sequences[index]
            let rowCount = switch chunk.logits {
            case .none: 0
            case .lastToken: 1
            case .allTokens: chunk.tokens.count
            }
            defer { rowBase += rowCount }
            if sequence.abortRequested {
                finish(sequence, .abort)
                continue
            }
            if chunk.logits == .allTokens { collectPromptLogprobs(sequence, chunk: chunk, logits: logits, firstRow: rowBase) }
            guard sequence.uncomputed == 0 else { continue }
            if sequence.output.count >= sequence.request.maxTokens {
                finish(sequence, .length)  // maxTokens 0: prompt logprobs only
                continue
            }
            accept(sample(sequence, logits: logits[rowBase + rowCount - 1]), for: sequence)
        }
    }

    /// A sampled token: stop conditions, then emitted and appended.
    func accept(_ sampled: SampledToken, for sequence: SequenceState) {
        let request = sequence.request
        if (!request.ignoreEOS && tokenizer.endOfGenerationTokens.contains(sampled.token))
            || request.stopTokenIDs.contains(sampled.token) {
            finish(sequence, .stop)
            return
        }
        sequence.append(sampled.token)
        scheduler.countGenerated()
        sequence.continuation.yield(.token(sampled))
        if sequence.output.count >= request.maxTokens || sequence.tokens.count >= maxModelLength {
            finish(sequence, .length)
        }
    }

    private func sample(_ sequence: SequenceState, logits row: ArraySlice<Float>) -> SampledToken {
        let request = sequence.request
        if request.logitBias.isEmpty {
            return row.withUnsafeBufferPointer {
                sequence.sampler.sample(logits: $0, history: sequence.output, prompt: request.promptTokens)
            }
        }
        var biased = Array(row)
        for (token, bias) in request.logitBias { biased[Int(token)] += bias }
        return sequence.sampler.sample(logits: biased, history: sequence.output, prompt: request.promptTokens)
    }

    /// Row i of the chunk (position p) predicts prompt token p + 1.
    private func collectPromptLogprobs(_ sequence: SequenceState, chunk: SequenceChunk, logits: Logits, firstRow: Int) {
        if sequence.promptLogprobs.isEmpty { sequence.promptLogprobs.append(nil) }
        let prompt = sequence.request.promptTokens
        let alternatives = sequence.request.promptLogprobs ?? 0
        for i in chunk.tokens.indices where chunk.startPosition + i + 1 < prompt.count {
            let token = prompt[chunk.startPosition + i + 1]
            let reported = logits[firstRow + i].withUnsafeBufferPointer {
                Sampler.report(token: token, logits: $0, alternatives: alternatives)
            }
            sequence.promptLogprobs.append(
                PromptTokenLogprob(token: token, logprob: reported.logprob!, topLogprobs: reported.topLogprobs))
        }
        if sequence.promptLogprobs.count == prompt.count {
            sequence.continuation.yield(.promptLogprobs(sequence.promptLogprobs))
            sequence.promptLogprobsSent = true
            sequence.promptLogprobs = []
        }
    }

    func finish(_ sequence: SequenceState, _ reason: FinishReason) {
        sequence.statistics.outputTokens = sequence.output.count
        sequence.continuation.yield(.finished(reason, sequence.statistics))
        scheduler.countFinished(reason)
        end(sequence)
    }

    func fail(_ sequence: SequenceState, _ message: String) {
        sequence.continuation.yield(.failed(message))
        scheduler.countFailed()
        end(sequence)
    }

    private func end(_ sequence: SequenceState) {
        keepBlocksForTransfer(sequence)
        scheduler.remove(sequence)
        sequences[sequence.request.id] = nil
        sequence.continuation.finish()
    }
}
