import Engine
import Foundation
import PDProtocol
import SystemCalls

/// P's whole leg of a PD request, without HTTP: handshake and reservation with D, the prefill
/// with its KV pushed layer by layer, the first token handed over, P's blocks freed.
public enum PrefillTransfer {
    public struct Outcome: Sendable {
        public var result: PrefillLegResult
        public var firstToken: SampledToken
    }

    /// `request` is the client's request as P's engine runs it (its id the PD request id);
    /// only its first token is generated here. Every wait on D is bounded by `timeout` (a D
    /// that takes no write or answers nothing for that long fails the leg); P's own queue and
    /// prefill are not (D hears meanwhile that P is alive). A cancelled task aborts the leg
    /// (and D is told).
    public static func run(engine: ServingEngine, request: GenerationRequest, decode: PeerEndpoint,
                           transferProtocol: TransferProtocol, layout: KVLayoutDescription,
                           timeout: Duration) async throws -> Outcome {
        var request = request
        request.maxTokens = 1
        request.ignoreEOS = true  // D applies the client's stop rules to the first token
        request.stopTokenIDs = []
        let hello = PDHello(requestID: request.id, layout: layout, promptTokens: request.promptTokens.count,
                            promptHash: PDHello.hash(tokens: request.promptTokens), transferProtocol: transferProtocol)
        let sender = try await blocking { try KVSender(engine: engine, hello: hello, decode: decode, timeout: timeout) }
        let stream: AsyncStream<GenerationEvent>
        do {
            stream = try engine.submitExport(request, firstBlock: sender.reservation.cachedBlocks, sink: sender)
        } catch {
            sender.fail("the prefill instance refused the request: \(error)")
            throw error
        }
        let id = request.id
        // D gone or refusing writes: no point finishing the prefill.
        sender.whenWriteFails { engine.abort(requestID: id) }
        do {
            let (first, statistics, promptLogprobs) = try await withTaskCancellationHandler {
                try await firstToken(stream)
            } onCancel: {
                engine.abort(requestID: id)
            }
            defer { engine.releaseExport(requestID: id) }
            let message = PDFirstToken(
                requestID: id, token: first.token, logprob: first.logprob,
                topLogprobs: first.topLogprobs.map { .init(token: $0.token, logprob: $0.logprob) },
                promptLogprobs: promptLogprobs?.map { entry in
                    entry.map { .init(token: $0.token, logprob: $0.logprob, topLogprobs: $0.topLogprobs.map { .init(token: $0.token, logprob: $0.logprob) }) }
                })
            let seconds = try await blocking { try sender.finish(firstToken: message) }
            let blocks = sender.reservation.blocksToSend.count
            return Outcome(result: PrefillLegResult(
                requestID: id, promptTokens: request.promptTokens.count, cachedPromptTokens: statistics.cachedPromptTokens,
                transferredBlocks: blocks, transferredBytes: sender.bytesSent, transferSeconds: seconds), firstToken: first)
        } catch {
            engine.abort(requestID: id)
            let writeFailure = sender.failure.flatMap { $0.peerFailed ? $0 : nil }
            let reason: any Error = writeFailure ?? error
            _ = try? await blocking { sender.fail("\(reason)") }
            for await _ in stream {}  // the request has ended: its blocks are held for release
            engine.releaseExport(requestID: id)
            throw reason
        }
    }

    /// The first token from P's engine stream (which then finishes), and the prompt logprobs
    /// when the request asked for them.
    private static func firstToken(_ stream: AsyncStream<GenerationEvent>) async throws
        -> (SampledToken, RequestStatistics, [PromptTokenLogprob?]?) {
        var token: SampledToken?
        var promptLogprobs: [PromptTokenLogprob?]?
        for await event in stream {
            switch event {
            case .token(let sampled): token = sampled
            case .finished(let reason, let statistics):
                guard let token else { throw TransferError("the prefill ended without a first token (\(reason.rawValue))") }
                return (token, statistics, promptLogprobs)
            case .failed(let message): throw TransferError("the prefill failed: \(message)")
            case .promptLogprobs(let logprobs): promptLogprobs = logprobs
            }
        }
        throw TransferError("the prefill was aborted")
    }

    /// Runs blocking socket work on a thread of its own (never on the cooperative pool).
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// What identifies a model file for the layout handshake: its size and a hash of its first
/// MiB (GGUF header, metadata and tensor directory), cheap to compute at start.
public enum ModelFingerprint {
    public static func of(path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "unreadable:\(path)" }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: 0)
        let head = (try? handle.read(upToCount: 1 << 20)) ?? Data()
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in head { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return "\(size)-\(String(hash, radix: 16))"
    }

    public static func layout(engine: ServingEngine, modelPath: String) -> KVLayoutDescription {
        let layout = engine.cacheLayout
        return KVLayoutDescription(modelFingerprint: of(path: modelPath), layers: layout.layers, kvHeads: layout.kvHeads,
                                   headDim: layout.headDim, blockSize: layout.blockSize, kvDataType: layout.dataType.rawValue)
    }
}
