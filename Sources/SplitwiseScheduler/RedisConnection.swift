import CHiredis
import Foundation

/// Where the scheduler's Redis is and how to log in (`--scheduler-host --scheduler-port
/// --scheduler-db --scheduler-password`).
public struct RedisAddress: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var db: Int
    public var password: String?

    public init(host: String, port: Int, db: Int = 0, password: String? = nil) {
        self.host = host
        self.port = port
        self.db = db
        self.password = password
    }

    public var description: String { "redis://\(host):\(port)/\(db)" }
}

public enum RedisError: Error, Equatable, CustomStringConvertible {
    /// No connection (refused, timed out, the server went away).
    case unreachable(String)
    /// The server answered an error (wrong password, wrong type, unknown command).
    case server(String)
    /// The server is older than the scheduler needs.
    case unsupportedVersion(String)

    public var description: String {
        switch self {
        case .unreachable(let why): "Redis unreachable: \(why)"
        case .server(let message): "Redis error: \(message)"
        case .unsupportedVersion(let version):
            "Redis \(version) is too old: the splitwise scheduler needs Redis 6.2 or later (RPOP key count)"
        }
    }
}

/// A Redis reply, copied out of hiredis's reply object.
public enum RedisReply: Sendable, Equatable {
    case string(Data)
    case status(String)
    case integer(Int)
    case array([RedisReply])
    case null

    public var data: Data? { if case .string(let data) = self { data } else { nil } }
    public var integer: Int? { if case .integer(let value) = self { value } else { nil } }
    public var array: [RedisReply]? {
        switch self {
        case .array(let values): values
        case .null: []
        default: nil
        }
    }
}

/// One blocking hiredis connection. Not thread-safe (hiredis contexts are not): `RedisClient`
/// owns each one and uses it from one serial queue only. Reconnects (AUTH, SELECT) on the next
/// command after any I/O error, since hiredis leaves a failed context unusable.
final class RedisConnection {
    let address: RedisAddress
    /// Bounds every connect, read and write, so a stopped Redis turns into an error, never a hang.
    let timeout: Duration
    private var context: UnsafeMutablePointer<redisContext>?
    /// The last lost connection: for one `timeout` after it, commands fail at once with its
    /// error instead of each waiting out the timeout on a server that does not answer.
    private var lastFailure: (at: ContinuousClock.Instant, error: RedisError)?

    init(address: RedisAddress, timeout: Duration) {
        self.address = address
        self.timeout = timeout
    }

    deinit { close() }

    func close() {
        if let context { redisFree(context) }
        context = nil
    }

    private static func timeval(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }

    private func connect() throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        if let context { return context }
        if let lastFailure, ContinuousClock.now - lastFailure.at < timeout { throw lastFailure.error }
        do throws(RedisError) {
            return try open()
        } catch {
            if case .unreachable = error { lastFailure = (.now, error) }
            throw error
        }
    }

    private func open() throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        guard let fresh = redisConnectWithTimeout(address.host, Int32(address.port), Self.timeval(timeout)) else {
            throw .unreachable("cannot allocate a hiredis context")
        }
        if fresh.pointee.err != 0 {
            let why = Self.errorText(fresh)
            redisFree(fresh)
            throw .unreachable("\(address.host):\(address.port): \(why)")
        }
        redisSetTimeout(fresh, Self.timeval(timeout))
        redisEnableKeepAlive(fresh)
        context = fresh
        do {
            if let password = address.password { _ = try command(["AUTH", password]) }
            if address.db != 0 { _ = try command(["SELECT", String(address.db)]) }
        } catch {
            close()
            throw error
        }
        return fresh
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Sends one command and reads its reply.
    func command(_ arguments: [String]) throws(RedisError) -> RedisReply {
        try pipeline([arguments.map { Data($0.utf8) }])[0]
    }

    func command(_ arguments: [Data]) throws(RedisError) -> RedisReply {
        try pipeline([arguments])[0]
    }

    /// Sends several commands in one write and reads their replies in order (one round trip).
    /// A server error in any of them is thrown after all replies are read.
    func pipeline(_ commands: [[Data]]) throws(RedisError) -> [RedisReply] {
        let context = try connect()
        for arguments in commands {
            let status: Int32 = Self.withArgv(arguments) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            if status != REDIS_OK { throw broken(context) }
        }
        var replies: [RedisReply] = []
        var serverError: String?
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw broken(context) }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            defer { freeReplyObject(raw) }
            switch Self.convert(reply) {
            case .success(let value): replies.append(value)
            case .failure(let message):
                serverError = serverError ?? message.text
                replies.append(.null)
            }
        }
        if let serverError { throw .server(serverError) }
        return replies
    }

    private func broken(_ context: UnsafeMutablePointer<redisContext>) -> RedisError {
        let why = Self.errorText(context)
        close()
        let error = RedisError.unreachable("\(address.host):\(address.port): \(why.isEmpty ? "connection lost" : why)")
        lastFailure = (.now, error)
        return error
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> Result<RedisReply, ServerMessage> {
        let type = reply.pointee.type
        func text() -> String {
            guard let str = reply.pointee.str else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: str, count: reply.pointee.len), as: UTF8.self)
        }
        switch type {
        case tandem_redis_reply_string():
            guard let str = reply.pointee.str else { return .success(.string(Data())) }
            return .success(.string(Data(bytes: str, count: reply.pointee.len)))
        case tandem_redis_reply_status(): return .success(.status(text()))
        case tandem_redis_reply_integer(): return .success(.integer(Int(reply.pointee.integer)))
        case tandem_redis_reply_nil(): return .success(.null)
        case tandem_redis_reply_error(): return .failure(ServerMessage(text: text()))
        case tandem_redis_reply_array():
            var values: [RedisReply] = []
            for index in 0..<reply.pointee.elements {
                guard let element = tandem_redis_reply_element(reply, index) else { values.append(.null); continue }
                switch convert(element) {
                case .success(let value): values.append(value)
                case .failure(let message): return .failure(message)
                }
            }
            return .success(.array(values))
        default: return .success(.null)
        }
    }

    struct ServerMessage: Error { var text: String }

    private static func withArgv<R>(_ arguments: [Data], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        // Copies into one buffer so every argument's pointer stays valid for the call.
        let total = arguments.reduce(0) { $0 + $1.count }
        let storage = UnsafeMutablePointer<CChar>.allocate(capacity: max(total, 1))
        defer { storage.deallocate() }
        var pointers: [UnsafePointer<CChar>?] = []
        var lengths: [Int] = []
        var offset = 0
        for argument in arguments {
            argument.withUnsafeBytes { bytes in
                if let base = bytes.baseAddress {
                    (storage + offset).withMemoryRebound(to: UInt8.self, capacity: bytes.count) {
                        $0.update(from: base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
                    }
                }
            }
            pointers.append(UnsafePointer(storage + offset))
            lengths.append(argument.count)
            offset += argument.count
        }
        return pointers.withUnsafeMutableBufferPointer { argv in
            lengths.withUnsafeBufferPointer { body(Int32(arguments.count), argv.baseAddress!, $0.baseAddress!) }
        }
    }
}

/// A Redis connection used from async code: every command runs on the connection's own serial
/// dispatch queue (GCD threads, not Swift's few cooperative threads, which a blocking hiredis
/// call must never hold), one at a time.
public final class RedisClient: @unchecked Sendable {
    // @unchecked Sendable: `connection` is mutable and not thread-safe, but it is only ever
    // touched inside blocks on `queue`, a serial queue, so no two threads use it at once.
    private let connection: RedisConnection
    private let queue: DispatchQueue
    private let onRoundTrip: @Sendable (Duration) -> Void

    public init(address: RedisAddress, timeout: Duration, label: String, onRoundTrip: @escaping @Sendable (Duration) -> Void = { _ in }) {
        connection = RedisConnection(address: address, timeout: timeout)
        queue = DispatchQueue(label: "tandem.redis.\(label)")
        self.onRoundTrip = onRoundTrip
    }

    public var address: RedisAddress { connection.address }

    /// Runs `body` with the connection on its queue.
    private func run<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws(RedisError) -> T) async throws(RedisError) -> T {
        let result: Result<T, RedisError> = await withCheckedContinuation { continuation in
            queue.async {
                let start = ContinuousClock.now
                do throws(RedisError) {
                    let value = try body(self.connection)
                    self.onRoundTrip(ContinuousClock.now - start)
                    continuation.resume(returning: .success(value))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    public func command(_ arguments: [String]) async throws(RedisError) -> RedisReply {
        try await run { (connection) throws(RedisError) in try connection.command(arguments) }
    }

    public func command(_ arguments: [Data]) async throws(RedisError) -> RedisReply {
        try await run { (connection) throws(RedisError) in try connection.command(arguments) }
    }

    public func pipeline(_ commands: [[Data]]) async throws(RedisError) -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        return try await run { (connection) throws(RedisError) in try connection.pipeline(commands) }
    }

    /// `INFO server`'s `redis_version`; throws `unsupportedVersion` below 6.2.
    public func checkVersion() async throws(RedisError) -> String {
        let info = try await command(["INFO", "server"])
        let text = String(decoding: info.data ?? Data(), as: UTF8.self)
        let line = text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }
        let version = line.map { String($0.dropFirst("redis_version:".count)) } ?? "unknown"
        let parts = version.split(separator: ".").compactMap { Int($0) }
        guard parts.count >= 2, parts[0] > 6 || (parts[0] == 6 && parts[1] >= 2) else { throw .unsupportedVersion(version) }
        return version
    }
}
