import Foundation

/// The blocks a decode instance reserved for one PD request: the prompt plus the first
/// generated token. `blockTable[0..<cachedBlocks]` are its own prefix-cache hits; the prefill
/// instance writes the prompt's blocks `cachedBlocks..<promptBlocks`, every layer.
public struct KVImportReservation: Sendable, Hashable {
    public let requestID: String
    let serial: UInt64
    public let blockTable: [Int32]
    public let cachedBlocks: Int
    public let promptBlocks: Int

    /// Blocks a prompt of `promptTokens` needs with the first generated token's slot, how many
    /// of them hold prompt positions, and how many of `cachedHits` full cached blocks are used
    /// (at most every full prompt block: P computes the logits, D computes nothing).
    public static func blockCounts(promptTokens: Int, blockSize: Int, cachedHits: Int)
        -> (total: Int, prompt: Int, cached: Int) {
        let total = (promptTokens + 1 + blockSize - 1) / blockSize
        let prompt = (promptTokens + blockSize - 1) / blockSize
        return (total, prompt, min(cachedHits, promptTokens / blockSize))
    }
}

/// What a decode instance's reservation waits for; `--kv-transfer-timeout` bounds each wait for
/// P's next word: its handshake from the reservation, then its reports while the request waits
/// in P's queue, then (from the prefill's start) its KV writes and reports up to the first token.
public enum ImportStage: Int, Comparable, Sendable {
    case prefillInstance, prefillStart, transfer

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    var explanation: String {
        switch self {
        case .prefillInstance: ": no prefill instance took it up"
        case .prefillStart: ": the prefill instance stopped reporting while the request waited in its queue"
        case .transfer: ": the prefill instance went silent during the prefill"
        }
    }
}

/// Why a decode instance will not take a request's KV.
public enum KVImportError: Error, Equatable, CustomStringConvertible {
    case noFreeBlocks(needed: Int, free: Int)
    case promptLogprobsMissing(String)
    case notAwaiting(String)

    public var description: String {
        switch self {
        case .noFreeBlocks(let needed, let free):
            "the decode instance cannot reserve \(needed) KV blocks for the transfer (\(free) free)"
        case .promptLogprobsMissing(let id):
            "the prefill instance handed over the first token of request '\(id)' without the prompt logprobs it asked for"
        case .notAwaiting(let id):
            "request '\(id)' is not waiting for KV on this decode instance (aborted, timed out or unknown)"
        }
    }
}

/// The decode side of PD: reserve blocks, accept KV writes into them only, and start decoding
/// once every block and the first token are in.
extension ServingEngine {
    /// Registers `request` without scheduling it, with its blocks reserved. Its stream yields
    /// nothing until `completeImport`; `failImport`, `abort` or the deadline (`timeout` per
    /// `ImportStage`, see `renewImportDeadline`) end it and free the blocks (after the last
    /// writer unpins).
    public func reserveImport(_ request: GenerationRequest, timeout: Duration)
        throws -> (AsyncStream<GenerationEvent>, KVImportReservation) {
        condition.lock()
        defer { condition.unlock() }
        let blockSize = scheduler.blocks.blockSize, prompt = request.promptTokens.count
        let full = prompt / blockSize
        let hit = scheduler.blocks.takeCachedPrefix(of: request.promptTokens, maxBlocks: full)
        let counts = KVImportReservation.blockCounts(promptTokens: prompt, blockSize: blockSize, cachedHits: hit.count)
        let needed = counts.total - hit.count
        guard needed <= scheduler.blocks.freeCount else {
            scheduler.blocks.release(hit)
            throw KVImportError.noFreeBlocks(needed: needed, free: scheduler.blocks.freeCount)
        }
        let admitted: (AsyncStream<GenerationEvent>, SequenceState)
        do {
            admitted = try admit(request)
        } catch {
            scheduler.blocks.release(hit)
            throw error
        }
        let (stream, sequence) = admitted
        sequence.blockTable = hit
        for _ in 0..<needed { sequence.blockTable.append(scheduler.blocks.allocate()!) }
        sequence.awaitingImport = true
        sequence.scheduledOnce = true
        sequence.statistics.cachedPromptTokens = hit.count * blockSize
        let reservation = KVImportReservation(requestID: request.id, serial: sequence.serial, blockTable: sequence.blockTable,
                                              cachedBlocks: hit.count, promptBlocks: counts.prompt)
        sequence.importTimeout = timeout
        sequence.importDeadline = .now + timeout
        checkImportDeadline(reservation, at: sequence.importDeadline)
        return (stream, reservation)
    }

    /// P was heard from, at `stage`: the deadline moves to the timeout from now (a later stage
    /// is never taken back by an earlier one).
    public func renewImportDeadline(_ reservation: KVImportReservation, stage: ImportStage) {
        condition.lock()
        defer { condition.unlock() }
        guard isAwaiting(reservation), let sequence = sequences[reservation.requestID], stage >= sequence.importStage else { return }
        sequence.importStage = stage
        sequence.importDeadline = .now + sequence.importTimeout
    }

    /// When the reservation's wait gives up; nil once it no longer waits.
    public func importDeadline(_ reservation: KVImportReservation) -> ContinuousClock.Instant? {
        condition.lock()
        defer { condition.unlock() }
        guard isAwaiting(reservation) else { return nil }
        return sequences[reservation.requestID]?.importDeadline
    }

    private func checkImportDeadline(_ reservation: KVImportReservation, at deadline: ContinuousClock.Instant) {
        let delay = max(0, (deadline - .now) / .milliseconds(1))
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(delay.rounded(.up)))) { [weak self] in
            self?.importDeadlineDue(reservation)
        }
    }

    private func importDeadlineDue(_ reservation: KVImportReservation) {
        condition.lock()
        defer { condition.unlock() }
        guard isAwaiting(reservation), let sequence = sequences[reservation.requestID] else { return }
        guard ContinuousClock.now >= sequence.importDeadline else {
            return checkImportDeadline(reservation, at: sequence.importDeadline)  // renewed meanwhile
        }
        let seconds = sequence.importTimeout / .seconds(1)
        fail(sequence, "the KV transfer for request '\(reservation.requestID)' did not complete within \(seconds) s (--kv-transfer-timeout)\(sequence.importStage.explanation)")
    }

    /// True while the reservation waits for KV; pins it so its blocks stay reserved (even if
    /// the request ends) until `unpinImport`. False (not pinned) once it has ended.
    public func pinImport(_ reservation: KVImportReservation) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard isAwaiting(reservation) else { return false }
        importPins[reservation.serial, default: 0] += 1
        return true
    }

    public func unpinImport(_ reservation: KVImportReservation) {
        condition.lock()
        defer { condition.unlock() }
        guard let pins = importPins[reservation.serial] else { return }
        if pins > 1 {
            importPins[reservation.serial] = pins - 1
            return
        }
        importPins[reservation.serial] = nil
        if let blocks = deferredReleases.removeValue(forKey: reservation.serial) { scheduler.blocks.release(blocks) }
    }

    /// The KV storage as shared memory, when configured (`sharedKVCache`).
    public var sharedKVMemory: SharedKVMemory? { cache.sharedMemory }

    public func isAwaitingImport(_ reservation: KVImportReservation) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return isAwaiting(reservation)
    }

    private func isAwaiting(_ reservation: KVImportReservation) -> Bool {
        guard let sequence = sequences[reservation.requestID], sequence.serial == reservation.serial else { return false }
        return sequence.awaitingImport
    }

    /// Where one block of one layer lives, to be written by a peer. The caller has checked the
    /// block belongs to a reservation it holds pinned.
    public func importDestination(layer: Int, block: Int32) -> UnsafeMutableRawBufferPointer {
        cache.blockBytes(layer: layer, block: Int(block))
    }

    /// Every prompt block is written and verified: the prompt logprobs (computed by P, when the
    /// request asks for them) and the first token (sampled by P) are emitted and the request
    /// joins the running batch (or ends there with `maxTokens` 0).
    public func completeImport(_ reservation: KVImportReservation, firstToken: SampledToken,
                               promptLogprobs: [PromptTokenLogprob?]? = nil) throws(KVImportError) {
        condition.lock()
        defer { condition.unlock() }
        guard isAwaiting(reservation), let sequence = sequences[reservation.requestID] else {
            throw KVImportError.notAwaiting(reservation.requestID)
        }
        if sequence.needsPromptLogprobs {
            guard let promptLogprobs, promptLogprobs.count == sequence.promptCount else {
                throw KVImportError.promptLogprobsMissing(reservation.requestID)
            }
            sequence.continuation.yield(.promptLogprobs(promptLogprobs))
            sequence.promptLogprobsSent = true
        }
        sequence.awaitingImport = false
        sequence.computed = sequence.promptCount
        scheduler.registerComputedBlocks(sequence)
        sequence.statistics.queueSeconds = Double(DispatchTime.now().uptimeNanoseconds - sequence.submittedAt) / 1e9
        guard sequence.request.maxTokens > 0 else { return finish(sequence, .length) }  // echo only
        accept(firstToken, for: sequence)
        if sequences[reservation.requestID] === sequence {
            scheduler.adoptRunning(sequence)
            condition.broadcast()
        }
    }

    /// Ends a reservation still waiting for KV with `message` (its stream yields `failed`).
    public func failImport(_ reservation: KVImportReservation, message: String) {
        condition.lock()
        defer { condition.unlock() }
        guard isAwaiting(reservation), let sequence = sequences[reservation.requestID] else { return }
        fail(sequence, message)
    }

    /// A sequence ending while a writer holds its reservation pinned keeps its blocks out of
    /// the pool until the last unpin; an export keeps them until `releaseExport`.
    func keepBlocksForTransfer(_ sequence: SequenceState) {
        if importPins[sequence.serial] != nil {
            deferredReleases[sequence.serial] = sequence.blockTable
            sequence.blockTable = []
        } else if sequence.export != nil {
            heldExports[sequence.request.id, default: []] += sequence.blockTable + sequence.heldForExport
            sequence.blockTable = []
            sequence.heldForExport = []
        }
    }
}
