import Foundation

/// Decides what each forward step computes (continuous batching): running sequences first,
/// oldest first — one token each when decoding, a chunk of their prompt when prefilling —
/// then waiting sequences in the admission order (`AdmissionOrder`: arrival order under fcfs,
/// short prompts first under gtsf), while the step has room (`maxNumSeqs` sequences,
/// `maxNumBatchedTokens` tokens) and the cache has blocks. When a running sequence needs a
/// block and none is free, the newest running sequence is preempted: its blocks are freed and
/// it goes back to the front of the queue, to be recomputed from its tokens later.
struct Scheduler {
    let maxNumSeqs: Int
    let maxNumBatchedTokens: Int
    /// Prompt chunks that return logits for every position are kept this short, so their
    /// logits (a vocabulary of floats per position) stay small.
    static let maxLogitsChunk = 128

    var blocks: BlockManager
    let admissionOrder: AdmissionOrder
    /// Nanoseconds on the clock of `SequenceState.submittedAt`.
    let now: () -> UInt64
    private(set) var waiting: [SequenceState] = []
    private(set) var running: [SequenceState] = []
    private(set) var counters = EngineCounters()

    /// One forward step: the sequences in batch order with their chunks.
    struct Step {
        var sequences: [SequenceState] = []
        var batch = ForwardBatch([])
    }

    init(maxNumSeqs: Int, maxNumBatchedTokens: Int, blocks: BlockManager,
         admissionOrder: AdmissionOrder = AdmissionOrder(),
         now: @escaping () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }) {
        self.maxNumSeqs = maxNumSeqs
        self.maxNumBatchedTokens = maxNumBatchedTokens
        self.blocks = blocks
        self.admissionOrder = admissionOrder
        self.now = now
    }

    var isIdle: Bool { waiting.isEmpty && running.isEmpty }

    mutating func enqueue(_ sequence: SequenceState) { waiting.append(sequence) }

    mutating func schedule() -> Step {
        var step = Step()
        var budget = maxNumBatchedTokens
        var preempted = false

        var index = 0
        while index < running.count && budget > 0 {
            let sequence = running[index]
            let count = chunkLength(sequence, budget: budget)
            if reserveBlocks(sequence, through: sequence.computed + count, preempted: &preempted) {
                add(sequence, count: count, to: &step)
                budget -= count
                index += 1
            } else {
                break  // it was the newest: everything after it is preempted too
            }
        }

        if !preempted && running.count < maxNumSeqs && budget > 0 { orderWaiting() }
        // No admissions in a step that had to preempt: the cache is full.
        while !preempted, let sequence = waiting.first, running.count < maxNumSeqs, budget > 0 {
            var hit: [Int32] = []
            if !sequence.needsPromptLogprobs {
                // At least the last token is computed here, for the logits to sample from.
                let maxBlocks = (sequence.tokens.count - 1) / blocks.blockSize
                hit = blocks.takeCachedPrefix(of: sequence.tokens, maxBlocks: maxBlocks)
            }
            sequence.blockTable = hit
            sequence.computed = hit.count * blocks.blockSize
            let count = chunkLength(sequence, budget: budget)
            let needed = blocks.blocksNeeded(forTokens: sequence.computed + count) - hit.count
            guard needed <= blocks.freeCount else {
                blocks.release(hit)
                sequence.resetComputation()
                break
            }
            for _ in 0..<needed { sequence.blockTable.append(blocks.allocate()!) }
            if !sequence.needsPromptLogprobs {
                counters.prefixCacheQueries += sequence.tokens.count
                counters.prefixCacheHits += sequence.computed
            }
            if !sequence.scheduledOnce {
                sequence.scheduledOnce = true
                sequence.statistics.queueSeconds =
                    Double(DispatchTime.now().uptimeNanoseconds - sequence.submittedAt) / 1e9
                sequence.statistics.cachedPromptTokens = sequence.computed
                counters.promptTokens += sequence.promptCount
            }
            waiting.removeFirst()
            running.append(sequence)
            add(sequence, count: count, to: &step)
            budget -= count
        }
        return step
    }

    /// Puts the waiting queue in admission order (a no-op under fcfs: it is already in order).
    private mutating func orderWaiting() {
        guard admissionOrder.policy != .fcfs, waiting.count > 1 else { return }
        let candidates = waiting.map {
            AdmissionOrder.Candidate(arrival: $0.submittedAt, promptTokens: $0.uncomputed, resumed: $0.scheduledOnce)
        }
        let order = admissionOrder.order(candidates, now: now())
        waiting = order.map { waiting[$0] }
    }

    /// After a step ran: the chunks' KV is in the cache; full blocks enter the prefix cache.
    mutating func completed(_ step: Step) {
        for (sequence, chunk) in zip(step.sequences, step.batch.sequences) {
            sequence.computed += chunk.tokens.count
            registerComputedBlocks(sequence)
        }
    }

    /// Enters the sequence's full computed blocks into the prefix cache.
    mutating func registerComputedBlocks(_ sequence: SequenceState) {
        let size = blocks.blockSize
        while (sequence.registeredBlocks + 1) * size <= sequence.computed {
            let start = sequence.registeredBlocks * size
            sequence.lastBlockHash = blocks.register(
                sequence.blockTable[sequence.registeredBlocks],
                tokens: sequence.tokens[start..<start + size], parent: sequence.lastBlockHash)
            sequence.registeredBlocks += 1
        }
    }

    /// A sequence whose prompt KV arrived from a prefill instance joins the running batch.
    mutating func adoptRunning(_ sequence: SequenceState) { running.append(sequence) }

    /// Takes a sequence out (finished, aborted or failed) and frees its blocks.
    mutating func remove(_ sequence: SequenceState) {
        blocks.release(sequence.blockTable)
        sequence.blockTable = []
        running.removeAll { $0 === sequence }
        waiting.removeAll { $0 === sequence }
    }

    mutating func countGenerated() { counters.generationTokens += 1 }
    mutating func countFinished(_ reason: FinishReason) {
        if reason == .abort { counters.abortedRequests += 1 } else { counters.finishedRequests += 1 }
    }
    mutating func countFailed() { counters.failedRequests += 1 }

    private func chunkLength(_ sequence: SequenceState, budget: Int) -> Int {
        let limit = sequence.needsPromptLogprobs ? min(budget, Self.maxLogitsChunk) : budget
        return min(sequence.uncomputed, limit)
    }

    /// Gives `sequence` blocks for positions up to `end`, preempting the newest running
    /// sequences while none are free. False if `sequence` itself had to be preempted.
    private mutating func reserveBlocks(_ sequence: SequenceState, through end: Int, preempted: inout Bool) -> Bool {
        let needed = blocks.blocksNeeded(forTokens: end) - sequence.blockTable.count
        while blocks.freeCount < needed {
            let victim = running.last!
            preempt(victim)
            preempted = true
            if victim === sequence { return false }
        }
        for _ in 0..<max(0, needed) { sequence.blockTable.append(blocks.allocate()!) }
        return true
    }

    private mutating func preempt(_ sequence: SequenceState) {
        if sequence.export != nil {
            sequence.heldForExport += sequence.blockTable  // a KV transfer may still read them
        } else {
            blocks.release(sequence.blockTable)
        }
        sequence.resetComputation()
        running.removeAll { $0 === sequence }
        waiting.insert(sequence, at: 0)
        sequence.statistics.preemptions += 1
        counters.preemptions += 1
    }

    private func add(_ sequence: SequenceState, count: Int, to step: inout Step) {
        let start = sequence.computed
        let logits: SequenceChunk.LogitsWanted =
            sequence.needsPromptLogprobs ? .allTokens : start + count == sequence.tokens.count ? .lastToken : .none
        step.sequences.append(sequence)
        step.batch.sequences.append(SequenceChunk(
            tokens: Array(sequence.tokens[start..<start + count]), startPosition: start,
            blockTable: sequence.blockTable, logits: logits))
    }
}
