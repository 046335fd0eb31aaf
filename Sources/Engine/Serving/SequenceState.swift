import Foundation

/// One request inside the serving engine: its tokens so far, how many of them have their KV
/// in the cache, the blocks holding it, its sampler and its event stream. Owned by the
/// scheduler; touched only under the engine's lock.
final class SequenceState {
    /// Unique for the engine's lifetime (request ids may be reused once a request is done).
    let serial: UInt64
    let request: GenerationRequest
    let continuation: AsyncStream<GenerationEvent>.Continuation
    let submittedAt: UInt64

    /// Prompt then generated tokens.
    private(set) var tokens: [Int32]
    /// Generated tokens (emitted ones; a stop token is not kept).
    private(set) var output: [Int32] = []
    /// Leading tokens whose keys and values are in the cache.
    var computed = 0
    var blockTable: [Int32] = []
    /// Leading full blocks entered into the prefix cache, and the chain hash of the last.
    var registeredBlocks = 0
    var lastBlockHash: UInt64 = 0

    var sampler: Sampler
    /// Log-probabilities of the prompt tokens computed so far (index 0, the first token, is nil).
    var promptLogprobs: [PromptTokenLogprob?] = []
    var promptLogprobsSent = false
    var statistics: RequestStatistics
    var scheduledOnce = false
    /// Part of the forward step running now (its blocks must stay until the step is done).
    var inStep = false
    /// `abort` arrived while the sequence was in a forward step: it ends right after the step.
    var abortRequested = false
    /// PD decode: blocks reserved, waiting for the prompt's KV and the first token from P.
    var awaitingImport = false
    /// PD decode: when the wait for KV gives up, and what it waits for (`KVImport.swift`).
    var importDeadline = ContinuousClock.now
    var importTimeout = Duration.zero
    var importStage = ImportStage.prefillInstance
    /// PD prefill: where this sequence's KV goes, the block index to send next, and whether
    /// its prefill has started.
    var export: (sink: any KVExportSink, nextBlock: Int, started: Bool)?
    /// PD prefill: blocks this sequence lost to preemption while a transfer may still read
    /// them; held with the others until `releaseExport`.
    var heldForExport: [Int32] = []

    init(serial: UInt64, request: GenerationRequest, sampler: Sampler,
         continuation: AsyncStream<GenerationEvent>.Continuation) {
        self.serial = serial
        self.request = request
        self.sampler = sampler
        self.continuation = continuation
        submittedAt = DispatchTime.now().uptimeNanoseconds
        tokens = request.promptTokens
        statistics = RequestStatistics(promptTokens: request.promptTokens.count)
    }

    var promptCount: Int { request.promptTokens.count }
    /// Tokens still to be run through the model before the next token can be sampled.
    var uncomputed: Int { tokens.count - computed }
    /// Asked for prompt log-probabilities that have not been delivered yet: every prompt
    /// position must be computed here (none taken from the prefix cache) with its logits.
    var needsPromptLogprobs: Bool { request.promptLogprobs != nil && !promptLogprobsSent }

    func append(_ token: Int32) {
        tokens.append(token)
        output.append(token)
    }

    /// Forgets the cached state (preemption): everything is recomputed from the tokens.
    func resetComputation() {
        computed = 0
        blockTable = []
        registeredBlocks = 0
        lastBlockHash = 0
        if !promptLogprobsSent { promptLogprobs = [] }
    }
}
