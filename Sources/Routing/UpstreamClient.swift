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
        let head = Self.head(url: url, path: path, headers: headers, bodyLength: body.readableBytes)
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

    static func head(url: String, path: String, headers: HTTPHeaders, bodyLength: Int) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: String(url.dropFirst("http://".count)))
        head.headers.replaceOrAdd(name: "Content-Length", value: String(bodyLength))
        return head
    }

    /// For the fast path (RelayFastPath), on `loop`: a kept-alive connection to `worker` on that
    /// loop, if one is idle, and how to start an exchange on it without a task. The exchange's
    /// future fails with `UpstreamError.closed(beforeResponse: true)` when the worker had
    /// closed it meanwhile (nothing was sent).
    func idleExchange(_ worker: PeerEndpoint, on loop: any EventLoop) -> IdleExchange? {
        let key = Key(host: worker.host, port: worker.port, loop: ObjectIdentifier(loop))
        while let connection = idle.withLock({ $0[key]?.popLast() }) {
            if connection.channel.isActive { return IdleExchange(client: self, connection: connection, key: key) }
        }
        return nil
    }

    /// An idle connection checked out on its own loop: `start` it, or `putBack` it unused.
    struct IdleExchange {
        let client: UpstreamClient
        let connection: UpstreamConnection
        let key: Key

        func putBack() { client.checkIn(connection, key) }

        /// Sends the request; returns its response's future and how to cancel it (closing the
        /// connection), both on the loop.
        func start(url: String, path: String, headers: HTTPHeaders, body: ByteBuffer, deadline: NIODeadline,
                   limit: Int) -> (response: EventLoopFuture<UpstreamResponse>, cancel: () -> Void) {
            let (client, connection, key) = (client, connection, key)
            let handler = connection.handler.value
            let promise = connection.channel.eventLoop.makePromise(of: UpstreamResponse.self)
            handler.start(head: UpstreamClient.head(url: url, path: path, headers: headers, bodyLength: body.readableBytes), body: body,
                          deadline: deadline, limit: limit, promise: promise) { reusable in
                if reusable { client.checkIn(connection, key) }
            }
            return (promise.futureResult, { handler.cancel(waitingOn: promise.futureResult) })
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
