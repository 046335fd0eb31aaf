import NIOCore
import NIOHTTP1

/// What a worker answered: a response that is not an event stream arrives whole (collected on
/// the event loop, no per-chunk task hops); an event stream arrives as a stream of chunks.
struct UpstreamResponse: Sendable {
    enum Body: Sendable {
        case whole(ByteBuffer)
        case stream(UpstreamBody)
    }

    var status: Int
    var contentType: String
    var body: Body

    /// The body whole, however it arrived (`limit`: the most bytes of a streamed one).
    func collect(upTo limit: Int) async throws -> ByteBuffer {
        switch body {
        case .whole(let buffer):
            return buffer
        case .stream(let stream):
            var buffer = ByteBuffer()
            for try await var chunk in stream.chunks {
                guard buffer.readableBytes + chunk.readableBytes <= limit else {
                    stream.cancel()
                    throw UpstreamError.tooLarge(limit: limit)
                }
                buffer.writeBuffer(&chunk)
            }
            return buffer
        }
    }
}

/// A streamed response body: chunks with back-pressure (the connection reads from the worker's
/// socket only while the consumer keeps up); `cancel()` closes the worker's request.
struct UpstreamBody: Sendable {
    let chunks: NIOThrowingAsyncSequenceProducer<ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark,
                                                 UpstreamExchangeHandler.Demand>
    let cancel: @Sendable () -> Void
}

enum UpstreamError: Error, Equatable, CustomStringConvertible {
    /// The request's deadline passed before its response ended.
    case timedOut
    /// The worker closed the connection before the response ended; `beforeResponse`: before
    /// any byte of it (a kept-alive connection the worker had closed meanwhile).
    case closed(beforeResponse: Bool)
    case cancelled
    case tooLarge(limit: Int)

    var description: String {
        switch self {
        case .timedOut: "timed out"
        case .closed: "connection closed by the worker"
        case .cancelled: "cancelled"
        case .tooLarge(let limit): "the response is larger than \(limit) bytes"
        }
    }
}

/// The HTTP/1.1 exchanges of one kept-alive connection to a worker, one at a time. Lives on the
/// channel's event loop; the pool reaches it through `NIOLoopBound`.
final class UpstreamExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// The stream consumer's demand, forwarded to the loop; `exchange` tells a late call from
    /// an earlier exchange on the same connection apart.
    struct Demand: NIOAsyncSequenceProducerDelegate {
        let handler: NIOLoopBound<UpstreamExchangeHandler>
        let exchange: UInt64

        func produceMore() {
            handler.eventLoop.execute { handler.value.resumeReading(exchange: exchange) }
        }

        func didTerminate() {
            handler.eventLoop.execute { handler.value.consumerGone(exchange: exchange) }
        }
    }

    typealias Source = NIOThrowingAsyncSequenceProducer<ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark,
                                                        Demand>.Source

    private enum State {
        case idle
        case awaitingHead(EventLoopPromise<UpstreamResponse>)
        case collecting(EventLoopPromise<UpstreamResponse>, status: Int, contentType: String)
        case streaming(Source)
        case closed
    }

    private var state = State.idle
    /// The body of a `.collecting` response so far (outside the enum: appended in place).
    private var collected = ByteBuffer()
    private var context: ChannelHandlerContext?
    private var exchange: UInt64 = 0
    private var limit = 0
    private var keepAlive = true
    private var timer: Scheduled<Void>?
    /// Runs when an exchange ended: true when the connection can take the next one.
    private var onDone: (@Sendable (Bool) -> Void)?
    private var readingPaused = false
    private var readPending = false

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Sends one request; `promise` gets the response head with the body (whole or streamed).
    func start(head: HTTPRequestHead, body: ByteBuffer, deadline: NIODeadline, limit: Int, promise: EventLoopPromise<UpstreamResponse>,
               onDone: @escaping @Sendable (Bool) -> Void) {
        guard case .idle = state, let context, context.channel.isActive else {
            promise.fail(UpstreamError.closed(beforeResponse: true))
            return
        }
        exchange &+= 1
        self.limit = limit
        self.onDone = onDone
        keepAlive = true
        state = .awaitingHead(promise)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop), exchange = exchange
        timer = context.eventLoop.scheduleTask(deadline: deadline) { handler.value.fail(UpstreamError.timedOut, exchange: exchange) }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Ends the current exchange, if it is still `exchange`, by closing the connection.
    func fail(_ error: UpstreamError, exchange: UInt64) {
        guard exchange == self.exchange else { return }
        switch state {
        case .idle, .closed: return
        default: break
        }
        end(error: error)
        context?.close(promise: nil)
    }

    /// The task waiting for `future`'s response was cancelled: that exchange ends here.
    func cancel(waitingOn future: EventLoopFuture<UpstreamResponse>) {
        switch state {
        case .awaitingHead(let promise) where promise.futureResult === future,
             .collecting(let promise, _, _) where promise.futureResult === future:
            fail(.cancelled, exchange: exchange)
        default:
            break
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .awaitingHead(let promise) = state else { return unexpected(context: context) }
            keepAlive = head.isKeepAlive
            let contentType = head.headers.first(name: "content-type") ?? "application/json"
            let status = Int(head.status.code)
            guard contentType.hasPrefix("text/event-stream") else {
                collected.clear()
                state = .collecting(promise, status: status, contentType: contentType)
                return
            }
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop), exchange = exchange
            let made = NIOThrowingAsyncSequenceProducer.makeSequence(
                elementType: ByteBuffer.self, failureType: (any Error).self,
                backPressureStrategy: NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark(lowWatermark: 1, highWatermark: 2), finishOnDeinit: false,
                delegate: Demand(handler: handler, exchange: exchange))
            state = .streaming(made.source)
            promise.succeed(UpstreamResponse(status: status, contentType: contentType, body: .stream(UpstreamBody(chunks: made.sequence) {
                handler.eventLoop.execute { handler.value.fail(.cancelled, exchange: exchange) }
            })))
        case .body(var chunk):
            switch state {
            case .collecting:
                guard collected.readableBytes + chunk.readableBytes <= limit else {
                    return fail(.tooLarge(limit: limit), exchange: exchange)
                }
                if collected.readableBytes == 0 { collected = chunk } else { collected.writeBuffer(&chunk) }
            case .streaming(let source):
                if source.yield(chunk) == .stopProducing { readingPaused = true }
            default:
                unexpected(context: context)
            }
        case .end:
            switch state {
            case .collecting(let promise, let status, let contentType):
                let body = collected
                collected = ByteBuffer()
                finish(reusable: keepAlive)
                promise.succeed(UpstreamResponse(status: status, contentType: contentType, body: .whole(body)))
            case .streaming(let source):
                finish(reusable: keepAlive)
                source.finish()
            default:
                unexpected(context: context)
            }
        }
    }

    /// A response part no request asked for: the connection cannot be trusted any more.
    private func unexpected(context: ChannelHandlerContext) {
        fail(.closed(beforeResponse: false), exchange: exchange)
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if readingPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(error: .closed(beforeResponse: awaitingHead))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        end(error: .closed(beforeResponse: awaitingHead))
        context.close(promise: nil)
    }

    private var awaitingHead: Bool {
        if case .awaitingHead = state { return true }
        return false
    }

    func resumeReading(exchange: UInt64) {
        guard exchange == self.exchange, readingPaused else { return }
        readingPaused = false
        flushPendingRead()
    }

    /// The stream's consumer went away (cancelled, or dropped the stream) before its end: the
    /// worker's request is closed with the connection.
    func consumerGone(exchange: UInt64) {
        guard exchange == self.exchange, case .streaming = state else { return }
        fail(.cancelled, exchange: exchange)
    }

    private func flushPendingRead() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    private func finish(reusable: Bool) {
        timer?.cancel()
        timer = nil
        state = .idle
        let onDone = onDone
        self.onDone = nil
        readingPaused = false
        flushPendingRead()
        if !reusable { context?.close(promise: nil) }
        onDone?(reusable)
    }

    /// Fails whatever is waiting on the current exchange; the connection is not reused.
    private func end(error: UpstreamError) {
        let pending = state
        timer?.cancel()
        timer = nil
        state = .closed
        let onDone = onDone
        self.onDone = nil
        switch pending {
        case .awaitingHead(let promise), .collecting(let promise, _, _): promise.fail(error)
        case .streaming(let source): source.finish(error)
        case .idle, .closed: break
        }
        onDone?(false)
    }
}
