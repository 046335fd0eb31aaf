import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PDProtocol

/// The OpenAI routes the router relays.
public enum OpenAIRoute: String, Sendable {
    case completions = "/v1/completions"
    case chatCompletions = "/v1/chat/completions"

    var metricLabel: String { self == .completions ? "completions" : "chat_completions" }
}

public struct RelaySettings: Sendable {
    /// Route to prefill–decode pairs when both roles are available.
    public var splitwise = false
    public var requestTimeout: Duration = .seconds(600)
    public var retry = RetryBackoff()
    public var maxBodyBytes = 8 << 20
    public var maxResponseBytes = 64 << 20

    public init() {}
}

/// One client request through the router: admission, the choice of worker(s), the relay, the
/// retries and the bookkeeping. Mixed workers get the request as it came; prefill–decode pairs
/// get the PD contract's two legs (PDRelay).
public final class Relay: Sendable {
    let table: WorkerTable
    let http: HTTPClient
    let workers: WorkerClient
    let mixedPolicy: any SelectionPolicy
    let prefillPolicy: any SelectionPolicy
    let decodePolicy: any SelectionPolicy
    let admission: AdmissionQueue
    let metrics: RouterMetrics
    let settings: RelaySettings
    let logger: Logger

    public init(table: WorkerTable, http: HTTPClient, mixedPolicy: any SelectionPolicy, prefillPolicy: any SelectionPolicy,
                decodePolicy: any SelectionPolicy, admission: AdmissionQueue, metrics: RouterMetrics, settings: RelaySettings,
                logger: Logger) {
        self.table = table
        self.http = http
        self.workers = WorkerClient(http: http)
        self.mixedPolicy = mixedPolicy
        self.prefillPolicy = prefillPolicy
        self.decodePolicy = decodePolicy
        self.admission = admission
        self.metrics = metrics
        self.settings = settings
        self.logger = logger
    }

    /// How one try on one worker (or one pair) ended.
    enum Attempt {
        case done(Response)
        /// Nothing reached the client: another worker may be tried. `failedURLs`: the workers
        /// to leave out of the next try.
        case failed(String, failedURLs: [String])
    }

    public func serve(_ request: Request, route: OpenAIRoute) async throws -> Response {
        let start = ContinuousClock.now
        let requestID = Self.requestID(request.headers[Self.requestIDField])
        var requestLogger = logger
        requestLogger[metadataKey: "request_id"] = "\(requestID)"
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: settings.maxBodyBytes)
        } catch {
            throw RouterError(status: .contentTooLarge, message: "The request body is larger than the limit of \(settings.maxBodyBytes) bytes.",
                              type: "invalid_request_error", code: "request_too_large")
        }
        let finish = RequestFinish(admission: admission, metrics: metrics, route: route.metricLabel, start: start)
        do {
            try await admission.acquire()
        } catch let error as RouterError {
            metrics.recordError(error.code ?? "queue")
            metrics.recordRequest(route: route.metricLabel, status: Int(error.status.code), duration: .now - start, firstToken: nil)
            throw error
        }
        do {
            let deadline = NIODeadline.now() + .nanoseconds(settings.requestTimeout.nanoseconds)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "X-Request-Id", value: requestID)
            if let authorization = request.headers[.authorization] { headers.add(name: "Authorization", value: authorization) }
            let context = RelayContext(route: route, requestID: requestID, headers: headers, deadline: deadline, finish: finish,
                                       logger: requestLogger)
            var response: Response
            if settings.splitwise, !table.candidates(role: .prefill, at: .now).isEmpty, !table.candidates(role: .decode, at: .now).isEmpty {
                response = try await servePD(body: body, context: context)
            } else {
                response = try await serveMixed(body: body, context: context)
            }
            response.headers[Self.requestIDField] = requestID
            return response
        } catch {
            let status = (error as? RouterError).map { Int($0.status.code) } ?? 500
            metrics.recordError((error as? RouterError)?.code ?? "internal")
            requestLogger.warning("request failed: \(error)")
            finish.finish(status: status)
            throw error
        }
    }

    /// What every try of one request shares.
    struct RelayContext: Sendable {
        var route: OpenAIRoute
        var requestID: String
        var headers: HTTPHeaders
        var deadline: NIODeadline
        var finish: RequestFinish
        var logger: Logger
    }

    // MARK: Mixed workers

    func serveMixed(body: ByteBuffer, context: RelayContext) async throws -> Response {
        var routing = RoutingRequest()
        if mixedPolicy.needsPromptText, let json = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] {
            routing.promptText = PromptText.of(json)
        }
        var tried: Set<String> = []
        var attempts = 0
        var lastError = ""
        while attempts <= settings.retry.maxRetries {
            if attempts > 0 {
                metrics.recordRetry()
                try await Task.sleep(for: settings.retry.delay(attempt: attempts - 1))
            }
            let now = ContinuousClock.now
            let candidates = table.candidates(role: .mixed, at: now).filter { !tried.contains($0.url) }
            guard !candidates.isEmpty else { break }
            let worker = mixedPolicy.choose(among: candidates, for: routing)
            tried.insert(worker.url)
            guard table.begin(worker.url, at: now) else { continue }
            attempts += 1
            context.logger.debug("to \(worker.url)")
            switch try await attemptMixed(worker.url, body: body, context: context) {
            case .done(let response):
                return response
            case .failed(let why, _):
                lastError = why
                context.logger.warning("\(worker.url) failed before the first token: \(why)")
            }
        }
        if attempts == 0 { throw RouterError.noWorker(settings.splitwise ? "prefill/decode or mixed" : "mixed") }
        throw RouterError.upstreamFailed(attempts: attempts, last: lastError)
    }

    func attemptMixed(_ url: String, body: ByteBuffer, context: RelayContext) async throws -> Attempt {
        var request = HTTPClientRequest(url: url + context.route.rawValue)
        request.method = .POST
        request.headers = context.headers
        request.body = .bytes(body)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, deadline: context.deadline)
        } catch {
            table.end(url, success: false, at: .now)
            if NIODeadline.now() >= context.deadline { throw RouterError.requestTimeout(after: settings.requestTimeout) }
            return .failed("\(url): \(WorkerClient.describe(error))", failedURLs: [url])
        }
        return try await relayResponse(response, from: url, context: context) { _ in }
    }

    /// Relays a worker's response once it is safe: a retryable status or a failure before the
    /// first token is `.failed` (nothing sent); otherwise the response, streamed or whole.
    /// `onEnd(outcome)` runs when the response ended (true: completed, false: the worker failed
    /// mid-stream, nil: the client went away).
    func relayResponse(_ response: HTTPClientResponse, from url: String, context: RelayContext,
                       onUpstream: (UpstreamStream) -> Void = { _ in },
                       onEnd: @escaping @Sendable (Bool?) async -> Void) async throws -> Attempt {
        let status = Int(response.status.code)
        if Self.isRetryable(status) {
            let text = (try? await response.body.collect(upTo: 1 << 16)).map { String(buffer: $0) } ?? ""
            table.end(url, success: false, at: .now)
            await onEnd(false)
            return .failed("\(url) answered HTTP \(status): \(text.prefix(300))", failedURLs: [url])
        }
        let contentType = response.headers.first(name: "content-type") ?? "application/json"
        guard contentType.hasPrefix("text/event-stream") else {
            do {
                let body = try await response.body.collect(upTo: settings.maxResponseBytes)
                table.end(url, success: true, at: .now)
                await onEnd(true)
                context.finish.finish(status: status)
                return .done(Response(status: .init(code: status), headers: [.contentType: contentType], body: .init(byteBuffer: body)))
            } catch {
                table.end(url, success: false, at: .now)
                await onEnd(false)
                if NIODeadline.now() >= context.deadline { throw RouterError.requestTimeout(after: settings.requestTimeout) }
                return .failed("\(url): \(WorkerClient.describe(error))", failedURLs: [url])
            }
        }
        let upstream = UpstreamStream(response)
        onUpstream(upstream)
        return try await relayStream(upstream, status: status, from: url, context: context, onEnd: onEnd)
    }

    func relayStream(_ upstream: UpstreamStream, status: Int, from url: String, context: RelayContext,
                     onEnd: @escaping @Sendable (Bool?) async -> Void) async throws -> Attempt {
        var watch = FirstTokenWatch()
        var held: [ByteBuffer] = []
        var chunks = upstream.chunks.makeAsyncIterator()
        do {
            while let chunk = try await chunks.next() {
                held.append(chunk)
                if watch.add(chunk) { break }
                if watch.sawError {
                    upstream.cancel()
                    table.end(url, success: false, at: .now)
                    await onEnd(false)
                    return .failed("\(url) sent an error before the first token: \(held.map { String(buffer: $0) }.joined().prefix(300))",
                                   failedURLs: [url])
                }
            }
        } catch {
            upstream.cancel()
            table.end(url, success: false, at: .now)
            await onEnd(false)
            if NIODeadline.now() >= context.deadline { throw RouterError.requestTimeout(after: settings.requestTimeout) }
            return .failed("\(url): \(WorkerClient.describe(error))", failedURLs: [url])
        }
        if watch.sawToken { context.finish.markFirstToken() }
        let table = table, finish = context.finish, logger = context.logger, timeout = settings.requestTimeout
        let heldChunks = held
        let body = ResponseBody { writer in
            var outcome: Bool? = true
            // A new iterator goes on where the first one stopped (the channel keeps no buffer).
            var remaining = upstream.chunks.makeAsyncIterator()
            do {
                try await writer.write(contentsOf: heldChunks)
                while true {
                    let next: ByteBuffer?
                    do {
                        next = try await remaining.next()
                    } catch {
                        // The worker failed after tokens went out: the client gets an error event.
                        outcome = false
                        let why = error is HTTPClientError && NIODeadline.now() >= context.deadline
                            ? RouterError.requestTimeout(after: timeout)
                            : RouterError.upstreamFailed(attempts: 1, last: "\(url) failed after the response started: \(WorkerClient.describe(error))")
                        logger.warning("stream from \(url) broke: \(error)")
                        var event = ByteBuffer(string: "data: ")
                        event.writeBytes(why.jsonBody)
                        event.writeString("\n\ndata: [DONE]\n\n")
                        try await writer.write(event)
                        break
                    }
                    guard let next else { break }
                    try await writer.write(next)
                }
                try await writer.finish(nil)
            } catch {
                // The client went away: stop the worker's request.
                outcome = outcome == false ? false : nil
                logger.info("client went away: aborting on \(url)")
            }
            upstream.cancel()
            table.end(url, success: outcome, at: .now)
            await onEnd(outcome)
            finish.finish(status: status)
        }
        return .done(Response(status: .init(code: status), headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body))
    }

    // MARK: Helpers

    static let requestIDField = HTTPFields.Element.Name("X-Request-Id")!

    /// 429, 5xx: the worker could not take the request now; another one may.
    static func isRetryable(_ status: Int) -> Bool { status == 429 || status >= 500 }

    /// The client's `X-Request-Id` when it is a sane token, else a new one.
    static func requestID(_ given: String?) -> String {
        if let given, (1...128).contains(given.utf8.count),
           given.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95 || $0 == 46 }) {
            return given
        }
        return "router-" + String(UInt64.random(in: 0...UInt64.max), radix: 16) + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }
}
