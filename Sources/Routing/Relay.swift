import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PDProtocol
import Synchronization

/// The OpenAI routes the router relays.
public enum OpenAIRoute: String, Sendable {
    case completions = "/v1/completions"
    case chatCompletions = "/v1/chat/completions"

    var metricLabel: String { self == .completions ? "completions" : "chat_completions" }
}

/// One relayed client request as it arrived: its route, its whole body, its request id (the
/// client's `X-Request-Id` when sane, else a new one: `Relay.requestID`) and its
/// `Authorization` header, passed on to the worker.
public struct RelayRequest: Sendable {
    public var route: OpenAIRoute
    public var body: ByteBuffer
    public var requestID: String
    public var authorization: String?
    /// When its head arrived (the start of its latency in the metrics).
    public var start: ContinuousClock.Instant

    public init(route: OpenAIRoute, body: ByteBuffer, requestID: String, authorization: String?, start: ContinuousClock.Instant = .now) {
        self.route = route
        self.body = body
        self.requestID = requestID
        self.authorization = authorization
        self.start = start
    }
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
    /// Relayed requests (kept-alive connections); `workers` for /health, /load and /abort.
    let upstream: UpstreamClient
    let workers: WorkerClient
    let mixedPolicy: any SelectionPolicy
    let prefillPolicy: any SelectionPolicy
    let decodePolicy: any SelectionPolicy
    let admission: AdmissionQueue
    let metrics: RouterMetrics
    let settings: RelaySettings
    let logger: Logger

    public init(table: WorkerTable, upstream: UpstreamClient, workers: WorkerClient, mixedPolicy: any SelectionPolicy, prefillPolicy: any SelectionPolicy,
                decodePolicy: any SelectionPolicy, admission: AdmissionQueue, metrics: RouterMetrics, settings: RelaySettings,
                logger: Logger) {
        self.table = table
        self.upstream = upstream
        self.workers = workers
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

    /// Relays one client request (its body whole) to a worker or a prefill–decode pair. Throws
    /// `RouterError` for the router's own answers (admission, no worker, timeout, upstream
    /// failure); RelayChannelHandler writes either, with the request id. `resume`: the fast
    /// path's first try (RelayFastPath), already admitted, whose outcome needs this path.
    public func serve(_ request: RelayRequest) async throws -> Response {
        try await serve(request, resume: nil)
    }

    func serve(_ request: RelayRequest, resume: FirstTry?) async throws -> Response {
        let route = request.route, start = request.start
        if resume == nil {
            do {
                try await admission.acquire()
            } catch let error as RouterError {
                metrics.recordError(error.code ?? "queue")
                metrics.recordRequest(route: route.metricLabel, status: Int(error.status.code), duration: .now - start, firstToken: nil)
                throw error
            }
        }
        let context = resume?.context ?? makeContext(request)
        do {
            if resume == nil, pdAvailable {
                return try await servePD(body: request.body, context: context)
            }
            return try await serveMixed(body: request.body, context: context, first: resume)
        } catch {
            let status = (error as? RouterError).map { Int($0.status.code) } ?? 500
            metrics.recordError((error as? RouterError)?.code ?? "internal")
            context.logger.warning("\(context.requestID): request failed: \(error)")
            context.finish.finish(status: status)
            throw error
        }
    }

    /// Whether a request goes to a prefill–decode pair.
    var pdAvailable: Bool {
        settings.splitwise && !table.candidates(role: .prefill, at: .now).isEmpty && !table.candidates(role: .decode, at: .now).isEmpty
    }

    /// What every try of an admitted request shares: its worker headers, deadline and finish.
    func makeContext(_ request: RelayRequest) -> RelayContext {
        let finish = RequestFinish(admission: admission, metrics: metrics, route: request.route.metricLabel, start: request.start)
        let deadline = NIODeadline.now() + .nanoseconds(settings.requestTimeout.nanoseconds)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "X-Request-Id", value: request.requestID)
        if let authorization = request.authorization { headers.add(name: "Authorization", value: authorization) }
        // The request id goes into the messages: metadata would be formatted on every request.
        return RelayContext(route: request.route, requestID: request.requestID, headers: headers, deadline: deadline, finish: finish,
                            logger: logger)
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

    /// What the policy needs to know of a mixed request.
    func mixedRouting(body: ByteBuffer) -> RoutingRequest {
        var routing = RoutingRequest()
        if mixedPolicy.needsPromptText, let json = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] {
            routing.promptText = PromptText.of(json)
        }
        return routing
    }

    /// The mixed worker the policy picks, leaving out those already tried; nil when none is left.
    func pickMixed(for routing: RoutingRequest, excluding tried: Set<String>, at now: ContinuousClock.Instant) -> WorkerSnapshot? {
        let candidates = table.candidates(role: .mixed, at: now).filter { !tried.contains($0.url) }
        guard !candidates.isEmpty else { return nil }
        return mixedPolicy.choose(among: candidates, for: routing)
    }

    /// `first`: a try the fast path made (its worker claimed), settled here as the first turn.
    func serveMixed(body: ByteBuffer, context: RelayContext, first: FirstTry? = nil) async throws -> Response {
        let routing = mixedRouting(body: body)
        var tried: Set<String> = []
        var pending = first
        if let first { tried.insert(first.worker.url) }
        return try await withRetries(noWorker: settings.splitwise ? "prefill/decode or mixed" : "mixed", context: context) { _ in
            if let first = pending {
                pending = nil
                return try await settleMixed(first, body: body, context: context)
            }
            let now = ContinuousClock.now
            guard let worker = pickMixed(for: routing, excluding: tried, at: now) else { return .exhausted }
            tried.insert(worker.url)
            guard table.begin(worker.url, at: now) else { return .skipped }
            context.logger.debug("\(context.requestID): to \(worker.url)")
            return .tried(try await attemptMixed(worker, body: body, context: context))
        }
    }

    /// One try on a claimed mixed worker.
    func attemptMixed(_ worker: WorkerSnapshot, body: ByteBuffer, context: RelayContext) async throws -> Attempt {
        let result: Result<UpstreamResponse, any Error>
        do {
            result = .success(try await upstream.post(worker.registration.endpoint, url: worker.url, path: context.route.rawValue,
                                                      headers: context.headers, body: body, deadline: context.deadline,
                                                      limit: settings.maxResponseBytes))
        } catch {
            result = .failure(error)
        }
        return try await settleMixed(result, from: worker.url, context: context)
    }

    /// The fast path's first try: a worker picked but not claimed is claimed and tried here;
    /// a kept-alive connection the worker had closed sent nothing, so the same worker gets the
    /// request on a fresh one (as `UpstreamClient.post` does).
    func settleMixed(_ first: FirstTry, body: ByteBuffer, context: RelayContext) async throws -> RetryStep {
        switch first.result {
        case nil:
            guard table.begin(first.worker.url, at: .now) else { return .skipped }
            context.logger.debug("\(context.requestID): to \(first.worker.url)")
            return .tried(try await attemptMixed(first.worker, body: body, context: context))
        case .failure(UpstreamError.closed(beforeResponse: true))?:
            return .tried(try await attemptMixed(first.worker, body: body, context: context))
        case let result?:
            return .tried(try await settleMixed(result, from: first.worker.url, context: context))
        }
    }

    /// How a try on worker `url` ended, its claim on the worker released.
    func settleMixed(_ result: Result<UpstreamResponse, any Error>, from url: String, context: RelayContext) async throws -> Attempt {
        switch result {
        case .failure(let error):
            table.end(url, success: false, at: .now)
            try throwIfTimedOut(error, context: context)
            return .failed("\(url): \(WorkerClient.describe(error))", failedURLs: [url])
        case .success(let response):
            return try await relayResponse(response, from: url, context: context) { _ in }
        }
    }

    /// A whole response to relay (not a retryable status): the worker's claim ends as a
    /// success and the request is finished. Both paths answer through this.
    func completeWhole(status: Int, from url: String, context: RelayContext) {
        table.end(url, success: true, at: .now)
        context.finish.finish(status: status)
    }

    /// A failure at or after the request's deadline is the router's 504.
    func throwIfTimedOut(_ error: any Error, context: RelayContext) throws {
        if (error as? UpstreamError) == .timedOut || NIODeadline.now() >= context.deadline {
            throw RouterError.requestTimeout(after: settings.requestTimeout)
        }
    }

    /// Relays a worker's response once it is safe: a retryable status or a failure before the
    /// first token is `.failed` (nothing sent); otherwise the response, streamed or whole.
    /// `onEnd(outcome)` runs when the response ended (true: completed, false: the worker failed
    /// mid-stream, nil: the client went away).
    func relayResponse(_ response: UpstreamResponse, from url: String, context: RelayContext,
                       onUpstream: (UpstreamStream) -> Void = { _ in },
                       onEnd: @escaping @Sendable (Bool?) async -> Void) async throws -> Attempt {
        let status = response.status
        if Self.isRetryable(status) {
            let text = (try? await response.collect(upTo: 1 << 16)).map { String(buffer: $0) } ?? ""
            table.end(url, success: false, at: .now)
            await onEnd(false)
            return .failed("\(url) answered HTTP \(status): \(text.prefix(300))", failedURLs: [url])
        }
        switch response.body {
        case .whole(let body):
            await onEnd(true)
            completeWhole(status: status, from: url, context: context)
            return .done(Response(status: .init(code: status), headers: [.contentType: response.contentType], body: .init(byteBuffer: body)))
        case .stream(let body):
            let upstream = UpstreamStream(body)
            onUpstream(upstream)
            return try await relayStream(upstream, status: status, from: url, context: context, onEnd: onEnd)
        }
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
            try throwIfTimedOut(error, context: context)
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
                        let why = (error as? UpstreamError) == .timedOut || NIODeadline.now() >= context.deadline
                            ? RouterError.requestTimeout(after: timeout)
                            : RouterError.upstreamFailed(attempts: 1, last: "\(url) failed after the response started: \(WorkerClient.describe(error))")
                        logger.warning("\(context.requestID): stream from \(url) broke: \(error)")
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
                logger.info("\(context.requestID): client went away: aborting on \(url)")
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
        return idPrefix + String(idCounter.add(1, ordering: .relaxed).newValue, radix: 16)
    }

    /// New request ids: a random prefix made once per process, then a counter (unique without
    /// drawing random numbers per request).
    private static let idPrefix = "router-" + String(UInt64.random(in: 0...UInt64.max), radix: 16) + "-"
    private static let idCounter = Atomic<UInt64>(0)
}
