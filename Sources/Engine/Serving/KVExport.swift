import Foundation

/// Where a prefill instance's KV goes (the PD transfer). Called on the engine thread; neither
/// call may block: the engine goes on with its steps (other requests' too) while the sink
/// reads, and the blocks handed over stay held until `releaseExport`.
public protocol KVExportSink: AnyObject, Sendable {
    /// The request's first prefill step runs now (it waited in the queue until here).
    func prefillStarting()
    /// Layer `layer`'s keys and values of `blocks` are complete in the cache (blocks at
    /// `firstBlockIndex...` of the sequence's block table); later layers are being computed.
    func layerReady(_ layer: Int, firstBlockIndex: Int, blocks: [Int32])
}

/// The prefill side of PD: a request whose KV is handed to a sink, layer by layer, as each
/// step computes it; its blocks stay held after it ends until `releaseExport`.
extension ServingEngine {
    /// Queues `request` (normally `maxTokens` 1: the first token is P's last; with prompt
    /// logprobs, P computes those too); blocks from index `firstBlock` on (the ones D lacks)
    /// go to `sink` once complete.
    public func submitExport(_ request: GenerationRequest, firstBlock: Int, sink: any KVExportSink)
        throws -> AsyncStream<GenerationEvent> {
        condition.lock()
        defer { condition.unlock() }
        let (stream, sequence) = try admit(request)
        sequence.export = (sink, firstBlock, false)
        scheduler.enqueue(sequence)
        condition.broadcast()
        return stream
    }

    /// Frees the blocks a finished export still holds (D confirmed, or the leg failed).
    public func releaseExport(requestID: String) {
        condition.lock()
        defer { condition.unlock() }
        if let blocks = heldExports.removeValue(forKey: requestID) { scheduler.blocks.release(blocks) }
    }

    /// One block of one layer of this instance's cache, to be read by a transfer.
    public func exportSource(layer: Int, block: Int32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(cache.blockBytes(layer: layer, block: Int(block)))
    }

    struct PlannedExport {
        var sink: any KVExportSink
        /// The sequence's first step: the sink hears `prefillStarting` first.
        var starts: Bool
        var firstIndex: Int
        var blocks: [Int32]
    }

    /// Blocks each exporting sequence completes in `step` (lock held): full blocks, and the last
    /// partial one once the prompt is done.
    func exportPlan(_ step: Scheduler.Step) -> [PlannedExport] {
        var plan: [PlannedExport] = []
        let blockSize = scheduler.blocks.blockSize
        for (sequence, chunk) in zip(step.sequences, step.batch.sequences) {
            guard var export = sequence.export else { continue }
            let starts = !export.started
            let end = chunk.startPosition + chunk.tokens.count
            let upTo = end >= sequence.tokens.count ? (end + blockSize - 1) / blockSize : end / blockSize
            let blocks = upTo > export.nextBlock ? Array(sequence.blockTable[export.nextBlock..<upTo]) : []
            if starts || !blocks.isEmpty {
                plan.append(PlannedExport(sink: export.sink, starts: starts, firstIndex: export.nextBlock, blocks: blocks))
            }
            export.started = true
            export.nextBlock = max(export.nextBlock, upTo)
            sequence.export = export
        }
        return plan
    }
}
