import Engine
import Foundation
import Hummingbird
import KVTransfer
import PDProtocol

/// This instance's part in PD disaggregation (`--splitwise-role`): what a request carrying
/// `disaggregate_info` does here. P runs its leg (`PrefillTransfer`) and answers
/// `PrefillLegResult`; D reserves blocks, waits for P's KV and first token (`KVReceiver`),
/// then answers the client's request as a mixed instance would.
public struct Disaggregation: Sendable {
    public let role: SplitwiseRole
    public let protocols: [TransferProtocol]
    public let timeout: Duration
    public let engine: ServingEngine
    public let layout: KVLayoutDescription
    /// D only.
    public let receiver: KVReceiver?

    public init(role: SplitwiseRole, protocols: [TransferProtocol], timeout: Duration, engine: ServingEngine,
                layout: KVLayoutDescription, receiver: KVReceiver?) {
        self.role = role
        self.protocols = protocols
        self.timeout = timeout
        self.engine = engine
        self.layout = layout
        self.receiver = receiver
    }

    /// A request's `disaggregate_info`, if it has one: checked against this instance, the one
    /// job given the PD request id, and P's leg run whole (its response returned). Nil when the
    /// request goes on as usual here: no `disaggregate_info`, or D's leg.
    static func dispatch(_ info: DisaggregateInfo?, jobs: inout [ChoiceJob], server: ServingContext) async throws -> Response? {
        guard let info else { return nil }
        guard let disaggregation = server.disaggregation else {
            throw OpenAIError.invalidParameter("disaggregate_info", "This instance is mixed (--splitwise-role mixed): it takes no disaggregate_info.")
        }
        try disaggregation.check(info, jobs: jobs)
        jobs[0].request.id = info.requestID
        guard info.role == .prefill else { return nil }
        return try await disaggregation.prefillLeg(jobs[0], info: info, registry: server.registry)
    }

    /// Checks that this instance can play the leg `info` asks for, with `jobs` (one choice).
    func check(_ info: DisaggregateInfo, jobs: [ChoiceJob]) throws(OpenAIError) {
        guard role != .mixed else {
            throw OpenAIError.invalidParameter("disaggregate_info", "This instance is mixed (--splitwise-role mixed): it takes no disaggregate_info.")
        }
        guard info.role == role else {
            throw OpenAIError.invalidParameter("disaggregate_info", "This instance is a \(role.rawValue) instance; disaggregate_info asks for the \(info.role.rawValue) leg.")
        }
        guard jobs.count == 1 else {
            throw OpenAIError.invalidParameter("n", "A disaggregated request has one prompt and n = 1 (got \(jobs.count) choices).")
        }
        guard protocols.contains(info.transferProtocol) else {
            throw OpenAIError.invalidParameter("disaggregate_info", "This instance does not offer transfer protocol \(info.transferProtocol.rawValue) (--cache-transfer-protocol \(protocols.map(\.rawValue).joined(separator: ","))).")
        }
        guard !info.requestID.isEmpty else {
            throw OpenAIError.invalidParameter("disaggregate_info", "disaggregate_info.request_id must not be empty.")
        }
    }

    /// D: reserves the request's blocks and announces it to the receiver; the stream starts
    /// with the first token P hands over.
    func submitDecode(_ request: GenerationRequest) throws -> AsyncStream<GenerationEvent> {
        guard let receiver else { throw OpenAIError.internalError("this decode instance has no PD-comm port") }
        let (stream, reservation) = try engine.reserveImport(request, timeout: timeout)
        receiver.expect(reservation, promptTokens: request.promptTokens)
        // The expectation goes when the request ends, whichever way.
        return AsyncStream { continuation in
            let task = Task {
                for await event in stream { continuation.yield(event) }
                receiver.forget(reservation)
                continuation.finish()
            }
            continuation.onTermination = { _ in
                task.cancel()
                engine.abort(requestID: request.id)
                receiver.forget(reservation)
            }
        }
    }

    /// P: the prefill leg; answers `PrefillLegResult` once D has the KV and the first token.
    func prefillLeg(_ job: ChoiceJob, info: DisaggregateInfo, registry: RequestRegistry) async throws -> Response {
        registry.add(job.request.id, engineIDs: [job.request.id])
        defer { registry.remove(job.request.id) }
        do {
            let outcome = try await PrefillTransfer.run(engine: engine, request: job.request, decode: info.decode,
                                                        transferProtocol: info.transferProtocol, layout: layout, timeout: timeout)
            return try JSONResponse.make(outcome.result)
        } catch let error as OpenAIError {
            throw error
        } catch let error as AdmissionError {
            throw OpenAIError(error)
        } catch {
            // pd_decode_failed: the decode instance is at fault (a router tries another one).
            let decodeFailed = (error as? TransferError)?.peerFailed == true
            throw OpenAIError(status: .badGateway, message: "The prefill leg of request '\(job.request.id)' failed: \(error)",
                              type: "pd_transfer_error", code: decodeFailed ? "pd_decode_failed" : "pd_transfer_failed")
        }
    }
}
