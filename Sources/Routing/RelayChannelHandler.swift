import Hummingbird
import NIOCore
import NIOHTTPTypes

/// Serves the relayed OpenAI routes (`POST /v1/completions`, `/v1/chat/completions`) straight
/// from the connection's channel pipeline, in front of Hummingbird: their request parts never
/// reach Hummingbird's per-connection async iterator, and their responses are written here on
/// the event loop: the common case with futures on the loop (Relay.startFast), the rest with
/// one Swift task per request (the relay's). Every other request passes
/// down to Hummingbird untouched (admin, registration, metrics, health).
///
/// One request at a time per connection, in order: parts that arrive while a request is still
/// being answered (pipelining) wait here, and reading stops until it is done, so a relayed
/// response and Hummingbird's never interleave. A client that goes away cancels its relay task,
/// which closes the worker's request (and aborts the PD legs).
final class RelayChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Current {
        case none
        /// A request Hummingbird answers: it has all of it once `requestEnded`, and is done
        /// with it once it wrote its response's end too.
        case passedOn(requestEnded: Bool, responseEnded: Bool)
        /// A relayed request's body arriving (`tooLarge`: past --max-body-bytes, dropped).
        case reading(route: OpenAIRoute, head: HTTPRequest, start: ContinuousClock.Instant, tooLarge: Bool)
        /// A relayed request being answered by its task.
        case answering(closeAfter: Bool)
    }

    private let relay: Relay
    private var current = Current.none
    private var body = ByteBuffer()
    /// Parts of requests after the current one, in order.
    private var waiting = CircularBuffer<HTTPRequestPart>()
    private var readPending = false
    private var inputClosedHeld = false
    private var context: ChannelHandlerContext?
    private var task: Task<Void, Never>?
    /// Closes the worker's request of a fast-path exchange under way (Relay.startFast).
    private var fastCancel: (() -> Void)?
    /// Counts relayed requests, so a late write of one that ended (client gone) is dropped.
    private var exchange: UInt64 = 0

    init(relay: Relay) {
        self.relay = relay
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if waiting.isEmpty, acceptsParts {
            handle(part, context: context)
        } else {
            waiting.append(part)
        }
    }

    /// Whether the next part belongs to the current request (or starts the next one).
    private var acceptsParts: Bool {
        switch current {
        case .none, .reading: true
        case .passedOn(let requestEnded, _): !requestEnded
        case .answering: false
        }
    }

    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch current {
        case .none:
            guard case .head(let head) = part, head.method == .post, let route = Self.route(of: head.path) else {
                // Hummingbird answers it (a part that is not a head there is its error too).
                if case .head = part { current = .passedOn(requestEnded: false, responseEnded: false) }
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            body.clear()
            current = .reading(route: route, head: head, start: .now, tooLarge: false)
        case .passedOn(_, let responseEnded):
            context.fireChannelRead(wrapInboundOut(part))
            if case .end = part {
                current = .passedOn(requestEnded: true, responseEnded: responseEnded)
                if responseEnded { requestDone(context: context) }
            }
        case .reading(let route, let head, let start, let tooLarge):
            switch part {
            case .head:
                // The decoder never sends a head before the previous request's end.
                context.close(promise: nil)
            case .body(var chunk):
                guard !tooLarge else { return }
                if body.readableBytes + chunk.readableBytes > relay.settings.maxBodyBytes {
                    body = ByteBuffer()
                    current = .reading(route: route, head: head, start: start, tooLarge: true)
                } else if body.readableBytes == 0 {
                    body = chunk
                } else {
                    body.writeBuffer(&chunk)
                }
            case .end:
                answer(route: route, head: head, start: start, tooLarge: tooLarge, context: context)
            }
        case .answering:
            waiting.append(part)
        }
    }

    static func route(of path: String?) -> OpenAIRoute? {
        guard let path else { return nil }
        if let query = path.firstIndex(of: "?") { return OpenAIRoute(rawValue: String(path[..<query])) }
        return OpenAIRoute(rawValue: path)
    }

    /// A client that closed its side after its requests (half-closure) still gets their
    /// answers: Hummingbird, told at once, would close the connection's output.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, !(waiting.isEmpty && isIdle) {
            inputClosedHeld = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private var isIdle: Bool {
        if case .none = current { return true }
        return false
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The client went away: its relay stops (the worker's request is closed).
        task?.cancel()
        task = nil
        fastCancel?()
        fastCancel = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch current {
        case .none, .passedOn:
            // Hummingbird answers a parse error (400) and closes.
            context.fireErrorCaught(error)
        case .reading, .answering:
            context.close(promise: nil)
        }
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        // Reading goes on while a relayed request is answered (a client that hangs up is seen),
        // but not once the next request is waiting here.
        if waiting.isEmpty {
            context.read()
        } else {
            readPending = true
        }
    }

    /// Hummingbird's response parts: the end of one finishes the request it answers.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        guard case .end = unwrapOutboundIn(data), case .passedOn(let requestEnded, _) = current else { return }
        current = .passedOn(requestEnded: requestEnded, responseEnded: true)
        guard requestEnded else { return }
        // After this write returns (Hummingbird flushes next): parts that arrive meanwhile wait.
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            guard let context = handler.value.context else { return }
            handler.value.requestDone(context: context)
        }
    }

    /// The current request is answered: the next one, if it is waiting, starts.
    private func requestDone(context: ChannelHandlerContext) {
        current = .none
        var passedOn = false
        while acceptsParts, let part = waiting.popFirst() {
            if case .passedOn = current { passedOn = true }
            handle(part, context: context)
            if case .passedOn = current { passedOn = true }
        }
        // Hummingbird's channel delivers what it read at the end of a read.
        if passedOn { context.fireChannelReadComplete() }
        if waiting.isEmpty, readPending {
            readPending = false
            context.read()
        }
        if inputClosedHeld, waiting.isEmpty, isIdle {
            inputClosedHeld = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
    }

    // MARK: Answering a relayed request

    private func answer(route: OpenAIRoute, head: HTTPRequest, start: ContinuousClock.Instant, tooLarge: Bool, context: ChannelHandlerContext) {
        exchange &+= 1
        let closeAfter = head.headerFields[.connection]?.lowercased() == "close"
        current = .answering(closeAfter: closeAfter)
        let requestID = Relay.requestID(head.headerFields[Relay.requestIDField])
        if tooLarge {
            let limit = relay.settings.maxBodyBytes
            writeError(RouterError(status: .contentTooLarge, message: "The request body is larger than the limit of \(limit) bytes.",
                                   type: "invalid_request_error", code: "request_too_large"), requestID: requestID)
            return
        }
        let request = RelayRequest(route: route, body: body, requestID: requestID, authorization: head.headerFields[.authorization],
                                   start: start)
        body = ByteBuffer()
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop), exchange = exchange
        switch relay.startFast(request, on: context.eventLoop) {
        case .started(let outcome, let cancel):
            fastCancel = cancel
            outcome.whenSuccess { outcome in handler.value.fastDone(outcome, request: request, exchange: exchange) }
        case .taskPath(let resume):
            startTask(request, resume: resume, handler: handler)
        }
    }

    /// The fast path's outcome (Relay.startFast), on the loop.
    private func fastDone(_ outcome: Relay.FastOutcome, request: RelayRequest, exchange: UInt64) {
        fastCancel = nil
        guard isCurrent(exchange), let context else {
            if case .handOff(let first) = outcome { relay.abandon(first) }
            return
        }
        switch outcome {
        case .whole(let status, let contentType, let body):
            // Head, body and end go out with one flush.
            writeHead(status: .init(code: status), fields: [.contentType: contentType], contentLength: body.readableBytes,
                      requestID: request.requestID, exchange: exchange)
            _ = writeBody(body, flush: false, exchange: exchange)
            writeEnd(exchange: exchange)
        case .handOff(let first):
            startTask(request, resume: first, handler: NIOLoopBound(self, eventLoop: context.eventLoop))
        }
    }

    private func startTask(_ request: RelayRequest, resume: Relay.FirstTry?, handler: NIOLoopBound<RelayChannelHandler>) {
        let relay = relay, exchange = exchange, requestID = request.requestID
        // Started from the event loop, the task runs on it (NIO is the concurrency executor: see
        // RouterCommand.runAsMain), as do the worker connections it uses.
        task = Task {
            let response: Response
            do {
                response = try await relay.serve(request, resume: resume)
            } catch {
                response = (error as? RouterError ?? .internalError(error)).plainResponse
            }
            await ChannelResponseWriter.write(response, requestID: requestID, to: handler, exchange: exchange)
        }
    }

    /// The router's own answer, made on the loop (no task).
    private func writeError(_ error: RouterError, requestID: String) {
        writeHead(status: error.status, fields: [.contentType: "application/json"], contentLength: error.jsonBody.count,
                  requestID: requestID, exchange: exchange)
        _ = writeBody(ByteBuffer(bytes: error.jsonBody), flush: false, exchange: exchange)
        writeEnd(exchange: exchange)
    }

    // The writes of the relayed response, on the loop. A write for an exchange that ended is
    // dropped (false: the client is gone).

    private func isCurrent(_ exchange: UInt64) -> Bool {
        guard exchange == self.exchange, case .answering = current, let context, context.channel.isActive else { return false }
        return true
    }

    func writeHead(status: HTTPResponse.Status, fields: HTTPFields, contentLength: Int?, requestID: String, exchange: UInt64) {
        guard isCurrent(exchange), let context else { return }
        var fields = fields
        fields[Relay.requestIDField] = requestID
        if let contentLength, fields[.contentLength] == nil { fields[.contentLength] = String(contentLength) }
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
    }

    /// Writes a chunk of the body; nil when the client is gone, else a future to wait on when the
    /// client is not keeping up (the channel is not writable), or none.
    func writeBody(_ chunk: ByteBuffer, flush: Bool, exchange: UInt64) -> EventLoopFuture<Void>?? {
        guard isCurrent(exchange), let context else { return .none }
        guard flush else {
            context.write(wrapOutboundOut(.body(chunk)), promise: nil)
            return .some(nil)
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.body(chunk)), promise: written)
        return .some(context.channel.isWritable ? nil : written.futureResult)
    }

    func writeEnd(exchange: UInt64) {
        guard exchange == self.exchange, case .answering(let closeAfter) = current, let context else { return }
        task = nil
        guard context.channel.isActive else { return }
        if closeAfter {
            let written = context.eventLoop.makePromise(of: Void.self), channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
            current = .none
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        requestDone(context: context)
    }

    /// The relay task ended without writing the end (the client went away meanwhile).
    func abandon(exchange: UInt64) {
        guard exchange == self.exchange, case .answering = current else { return }
        task = nil
        context?.close(promise: nil)
    }
}

/// Writes a relayed response from its task through the handler on the loop: no hop when the
/// task runs on the connection's loop (as it does), one `submit` otherwise. A whole body goes
/// out with one flush at its end; the chunks of a stream are flushed one by one, and the task
/// waits while the client is not keeping up.
struct ChannelResponseWriter: ResponseBodyWriter {
    let handler: NIOLoopBound<RelayChannelHandler>
    let exchange: UInt64
    let streamed: Bool

    static func write(_ response: Response, requestID: String, to handler: NIOLoopBound<RelayChannelHandler>, exchange: UInt64) async {
        let length = response.body.contentLength
        let writer = ChannelResponseWriter(handler: handler, exchange: exchange, streamed: length == nil)
        do {
            let (status, fields) = (response.status, response.headers)
            try await writer.onLoop { handler in
                handler.writeHead(status: status, fields: fields, contentLength: length, requestID: requestID, exchange: exchange)
                return nil
            }
            try await response.body.write(writer)
        } catch {
            let loop = handler.eventLoop
            if loop.inEventLoop { handler.value.abandon(exchange: exchange) } else { loop.execute { handler.value.abandon(exchange: exchange) } }
        }
    }

    struct ClientGone: Error {}

    /// Runs `body` on the loop; waits on the future it returns, if any.
    private func onLoop(_ body: @escaping @Sendable (RelayChannelHandler) throws -> EventLoopFuture<Void>?) async throws {
        let handler = handler
        if handler.eventLoop.inEventLoop {
            if let wait = try body(handler.value) { try await wait.get() }
        } else {
            let wait = try await handler.eventLoop.submit { try body(handler.value) }.get()
            if let wait { try await wait.get() }
        }
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        let exchange = exchange, flush = streamed
        try await onLoop { handler in
            guard let wait = handler.writeBody(buffer, flush: flush, exchange: exchange) else { throw ClientGone() }
            return wait
        }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        let exchange = exchange
        try await onLoop { handler in
            handler.writeEnd(exchange: exchange)
            return nil
        }
    }
}
