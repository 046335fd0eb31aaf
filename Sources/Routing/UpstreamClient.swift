import NIOCore
import NIOHTTP1
import NIOPosix
import PDProtocol
import Synchronization

/// The router's client for relayed requests: per worker and event loop, a pool of kept-alive
/// HTTP/1.1 connections, reused most recent first. A request starts on a connection of the
/// loop it runs on, so it does not hop threads; nothing is allocated per request beyond the
/// request head and the response. (The rare calls, `/health`, `/load`, `/abort`, go through
/// AsyncHTTPClient: WorkerClient.)
public final class UpstreamClient: Sendable {
    struct Key: Hashable {
        var host: String
        var port: Int
        var loop: ObjectIdentifier
    }

    private let group: any EventLoopGroup
    private let connectTimeout: TimeAmount
    private let maxIdlePerKey: Int
    private let idle = Mutex<[Key: [UpstreamConnection]]>([:])

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, connectTimeout: TimeAmount = .seconds(5),
                maxIdlePerKey: Int = 1024) {
        self.group = group
        self.connectTimeout = connectTimeout
        self.maxIdlePerKey = maxIdlePerKey
    }

    /// POSTs `body` to `path` on `worker` (whose `url` is `url`: `http://host:port`). Fails with
    /// `UpstreamError` (or a connect error); a kept-alive connection the worker closed meanwhile
    /// is replaced without the caller noticing.
    func post(_ worker: PeerEndpoint, url: String, path: String, headers: HTTPHeaders, body: ByteBuffer, deadline: NIODeadline,
              limit: Int) async throws -> UpstreamResponse {
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? group.next()
        let key = Key(host: worker.host, port: worker.port, loop: ObjectIdentifier(loop))
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: String(url.dropFirst("http://".count)))
        head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        while true {
            try Task.checkCancellation()
            guard NIODeadline.now() < deadline else { throw UpstreamError.timedOut }
            let (connection, reused) = try await checkOut(key, on: loop, deadline: deadline)
            do {
                return try await connection.exchange(head, body: body, deadline: deadline, limit: limit) { [self] reusable in
                    if reusable { checkIn(connection, key) }
                }
            } catch UpstreamError.closed(beforeResponse: true) where reused {
                continue
            }
        }
    }

    /// Closes the idle connections (those in use close when their exchange ends).
    public func shutdown() {
        let all = idle.withLock { idle in
            defer { idle = [:] }
            return Array(idle.values.joined())
        }
        for connection in all { connection.channel.close(promise: nil) }
    }

    private func checkOut(_ key: Key, on loop: any EventLoop, deadline: NIODeadline) async throws -> (UpstreamConnection, reused: Bool) {
        while let connection = idle.withLock({ $0[key]?.popLast() }) {
            if connection.channel.isActive { return (connection, true) }
        }
        let timeout = min(connectTimeout, deadline - .now())
        let connection = try await ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: key.host, port: key.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // The request heads are the router's own: no header validation on the way out.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    let handler = UpstreamExchangeHandler()
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return UpstreamConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
                }
            }
        return (connection, false)
    }

    private func checkIn(_ connection: UpstreamConnection, _ key: Key) {
        let kept = idle.withLock { idle in
            guard idle[key, default: []].count < maxIdlePerKey else { return false }
            idle[key, default: []].append(connection)
            return true
        }
        if !kept { connection.channel.close(promise: nil) }
    }
}

/// One kept-alive connection to a worker.
final class UpstreamConnection: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<UpstreamExchangeHandler>

    init(channel: any Channel, handler: NIOLoopBound<UpstreamExchangeHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// One request and its response head (with the body whole, or its stream); cancelling the
    /// task before then closes the connection. `onDone(reusable)` runs when the response ended.
    func exchange(_ head: HTTPRequestHead, body: ByteBuffer, deadline: NIODeadline, limit: Int,
                  onDone: @escaping @Sendable (Bool) -> Void) async throws -> UpstreamResponse {
        let loop = channel.eventLoop, handler = handler
        let promise = loop.makePromise(of: UpstreamResponse.self)
        let future = promise.futureResult
        if loop.inEventLoop {
            handler.value.start(head: head, body: body, deadline: deadline, limit: limit, promise: promise, onDone: onDone)
        } else {
            loop.execute { handler.value.start(head: head, body: body, deadline: deadline, limit: limit, promise: promise, onDone: onDone) }
        }
        return try await withTaskCancellationHandler {
            try await future.get()
        } onCancel: {
            loop.execute { handler.value.cancel(waitingOn: future) }
        }
    }
}
