import Foundation
import Hummingbird
import NIOCore
import NIOFoundationCompat
import PDProtocol
import Synchronization

/// The two legs of one PD try: when the prefill leg fails, everything registered here runs
/// at once (the decode leg is cancelled and aborted); once the decode leg ended, a prefill
/// failure changes nothing.
final class PDLegs: Sendable {
    struct PrefillFailure: Sendable {
        var why: String
        /// P's HTTP status when it answered, nil when it did not (connection, timeout).
        var status: Int?
        var body: ByteBuffer?
    }

    private struct State {
        var prefillFailure: PrefillFailure?
        var decodeEnded = false
        var onPrefillFailure: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())

    var prefillFailure: PrefillFailure? { state.withLock { $0.prefillFailure } }

    /// Records P's failure; false when the decode leg had already ended (nothing to abort).
    func prefillFailed(_ failure: PrefillFailure) -> Bool {
        let handlers = state.withLock { state -> [@Sendable () -> Void]? in
            guard !state.decodeEnded else { return nil }
            state.prefillFailure = failure
            defer { state.onPrefillFailure = [] }
            return state.onPrefillFailure
        }
        handlers?.forEach { $0() }
        return handlers != nil
    }

    func whenPrefillFails(_ handler: @escaping @Sendable () -> Void) {
        let failedAlready = state.withLock { state -> Bool in
            if state.prefillFailure != nil { return true }
            state.onPrefillFailure.append(handler)
            return false
        }
        if failedAlready { handler() }
    }

    func decodeEnded() { state.withLock { $0.decodeEnded = true } }
}

extension Relay {
    enum PrefillOutcome: Sendable {
        case succeeded(PrefillLegResult)
        case failed(PDLegs.PrefillFailure)
    }

    func servePD(body: ByteBuffer, context: RelayContext) async throws -> Response {
        guard let json = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] else {
            throw RouterError.malformed("request", "the body is not a JSON object")
        }
        if let n = json["n"] as? Int, n != 1 {
            throw RouterError(status: .badRequest, message: "n must be 1 for prefill-decode requests (got \(n)).",
                              type: "invalid_request_error")
        }
        var routing = RoutingRequest()
        if prefillPolicy.needsPromptText || decodePolicy.needsPromptText { routing.promptText = PromptText.of(json) }
        var triedPrefill: Set<String> = [], triedDecode: Set<String> = []
        return try await withRetries(noWorker: "prefill and decode", context: context) { number in
            let now = ContinuousClock.now
            let prefills = table.candidates(role: .prefill, at: now).filter { !triedPrefill.contains($0.url) }
            let decodes = table.candidates(role: .decode, at: now).filter { !triedDecode.contains($0.url) }
            guard !prefills.isEmpty, !decodes.isEmpty else { return .exhausted }
            let prefill = prefillPolicy.choose(among: prefills, for: routing)
            let decode = decodePolicy.choose(among: decodes, for: routing)
            guard let transfer = PDPairing.transferProtocol(prefill: prefill.registration, decode: decode.registration) else {
                context.logger.warning("\(prefill.url) and \(decode.url) share no KV transfer protocol")
                triedDecode.insert(decode.url)
                return .skipped
            }
            guard table.begin(prefill.url, at: now) else {
                triedPrefill.insert(prefill.url)
                return .skipped
            }
            guard table.begin(decode.url, at: now) else {
                table.end(prefill.url, success: nil, at: now)
                triedDecode.insert(decode.url)
                return .skipped
            }
            let engineID = number == 1 ? context.requestID : "\(context.requestID)-retry\(number - 1)"
            context.logger.debug("PD \(engineID): prefill \(prefill.url), decode \(decode.url), \(transfer.rawValue)")
            let attempt = try await attemptPD(prefill: prefill.registration, decode: decode.registration, json: json, transfer: transfer,
                                              engineID: engineID, context: context)
            if case .failed(_, let failedURLs) = attempt {
                if failedURLs.contains(prefill.url) { triedPrefill.insert(prefill.url) }
                if failedURLs.contains(decode.url) { triedDecode.insert(decode.url) }
            }
            return .tried(attempt)
        }
    }

    func attemptPD(prefill: WorkerRegistration, decode: WorkerRegistration, json: [String: Any], transfer: TransferProtocol,
                   engineID: String, context: RelayContext) async throws -> Attempt {
        let bodies = try PDPairing.legBodies(json, prefill: prefill, decode: decode, requestID: engineID, transferProtocol: transfer)
        var headers = context.headers
        headers.replaceOrAdd(name: "X-Request-Id", value: engineID)
        let legs = PDLegs()
        let upstream = upstream, table = table, metrics = metrics, workers = workers, deadline = context.deadline
        let path = context.route.rawValue, maxResponseBytes = settings.maxResponseBytes

        let prefillBody = ByteBuffer(bytes: bodies.prefill)
        let prefillTask = Task<PrefillOutcome, Never> {
            do {
                let response = try await upstream.post(prefill.endpoint, url: prefill.url, path: path, headers: headers, body: prefillBody,
                                                       deadline: deadline, limit: 1 << 20)
                let body = try await response.collect(upTo: 1 << 20)
                let status = response.status
                guard status == 200 else {
                    return .failed(.init(why: "prefill \(prefill.url) answered HTTP \(status): \(String(buffer: body).prefix(300))",
                                         status: status, body: body))
                }
                return .succeeded(try JSONDecoder().decode(PrefillLegResult.self, from: Data(buffer: body)))
            } catch {
                return .failed(.init(why: "prefill \(prefill.url): \(WorkerClient.describe(error))", status: nil, body: nil))
            }
        }
        // If the prefill leg fails, the decode leg is aborted at once.
        Task {
            switch await prefillTask.value {
            case .succeeded(let result):
                table.end(prefill.url, success: true, at: .now)
                metrics.recordTransfer(bytes: result.transferredBytes, seconds: result.transferSeconds)
            case .failed(let failure):
                let abortDecode = legs.prefillFailed(failure)
                table.end(prefill.url, success: abortDecode ? !(failure.status.map(Self.isRetryable) ?? true) : nil, at: .now)
                if abortDecode {
                    context.logger.warning("\(engineID): \(failure.why): aborting the decode leg on \(decode.url)")
                    await workers.abort(engineID, on: decode.endpoint)
                }
            }
        }

        let decodeBody = ByteBuffer(bytes: bodies.decode)
        let decodeHead = Task {
            try await upstream.post(decode.endpoint, url: decode.url, path: path, headers: headers, body: decodeBody, deadline: deadline,
                                    limit: maxResponseBytes)
        }
        legs.whenPrefillFails { decodeHead.cancel() }

        // When the decode leg ends early (failed, refused, client gone), the prefill leg is aborted.
        let abortPrefill: @Sendable () async -> Void = {
            legs.decodeEnded()
            prefillTask.cancel()
            await workers.abort(engineID, on: prefill.endpoint)
        }
        let response: UpstreamResponse
        do {
            response = try await decodeHead.value
        } catch {
            table.end(decode.url, success: legs.prefillFailure == nil ? false : nil, at: .now)
            if legs.prefillFailure == nil { await abortPrefill() }
            try throwIfTimedOut(error, context: context)
            return prefillFailureAttempt(legs, context: context, prefill: prefill.url, decode: decode.url)
                ?? .failed("decode \(decode.url): \(WorkerClient.describe(error))", failedURLs: [decode.url])
        }
        let decodeStatus = response.status
        let attempt = try await relayResponse(response, from: decode.url, context: context, onUpstream: { upstream in
            legs.whenPrefillFails { upstream.cancel() }
        }, onEnd: { outcome in
            if outcome == nil { await workers.abort(engineID, on: decode.endpoint) }
            if outcome != true || decodeStatus != 200 { await abortPrefill() }
        })
        if case .failed(let why, _) = attempt {
            return prefillFailureAttempt(legs, context: context, prefill: prefill.url, decode: decode.url)
                ?? .failed(why, failedURLs: [decode.url])
        }
        return attempt
    }

    /// When the prefill leg's failure ended the try: P's own error when P refused the request
    /// (4xx: the client's fault, not retried), else a retryable failure, blamed on D when P
    /// says D is at fault (code `pd_decode_failed`: D unreachable, gone, refusing), else on P.
    private func prefillFailureAttempt(_ legs: PDLegs, context: RelayContext, prefill: String, decode: String) -> Attempt? {
        guard let failure = legs.prefillFailure else { return nil }
        if let status = failure.status, !Self.isRetryable(status), let body = failure.body {
            context.finish.finish(status: status)
            return .done(Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: body)))
        }
        let decodeFailed = failure.body.map { String(buffer: $0).contains("\"pd_decode_failed\"") } ?? false
        return .failed(failure.why, failedURLs: [decodeFailed ? decode : prefill])
    }
}
