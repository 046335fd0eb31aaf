import Foundation
import PDProtocol
import SystemCalls
#if canImport(Glibc)
import Glibc
#endif

/// Why a P ↔ D exchange stopped: the peer's own failure message, or what happened here.
public struct TransferError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// The peer failed (unreachable, closed, stopped answering, or sent its own failure), as
    /// opposed to a failure on this side.
    public var peerFailed: Bool
    public init(_ description: String, peerFailed: Bool = false) {
        self.description = description
        self.peerFailed = peerFailed
    }
}

/// One TCP connection carrying PD frames (`PDFrameHeader`), blocking, with a deadline: every
/// read and write gives up when it passes, so a peer that stops answering cannot hold a thread.
final class FrameConnection {
    let fd: Int32
    var deadline: ContinuousClock.Instant
    /// What the peer is, for error messages ("the decode instance 127.0.0.1:8201").
    let peer: String

    init(fd: Int32, deadline: ContinuousClock.Instant, peer: String) {
        self.fd = fd
        self.deadline = deadline
        self.peer = peer
        var one: Int32 = 1
        let tcpNoDelay: Int32 = 1  // TCP_NODELAY (netinet/tcp.h): acks and small frames go out at once
        setsockopt(fd, Int32(IPPROTO_TCP), tcpNoDelay, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// Connects to `host:port` (IPv4 or IPv6, names resolved).
    static func connect(host: String, port: Int, deadline: ContinuousClock.Instant, peer: String) throws -> FrameConnection {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let info = list else {
            throw TransferError("cannot resolve \(peer) (\(host)): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
        guard fd >= 0 else { throw TransferError("socket: \(String(cString: strerror(errno)))") }
        if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw TransferError("cannot connect to \(peer) at \(host):\(port): \(reason)", peerFailed: true)
        }
        return FrameConnection(fd: fd, deadline: deadline, peer: peer)
    }

    // MARK: Writing

    func send(_ kind: PDFrameHeader.Kind, json value: some Encodable) throws {
        let payload = try JSONEncoder().encode(value)
        try send(kind, payload: Array(payload))
    }

    func send(_ kind: PDFrameHeader.Kind, payload: [UInt8]) throws {
        try sendAll(PDFrameHeader(kind: kind, length: UInt64(payload.count)).bytes + payload)
    }

    /// A frame whose payload is `prefix` then each of `chunks`, written without copying them.
    func send(_ kind: PDFrameHeader.Kind, prefix: [UInt8], chunks: [UnsafeRawBufferPointer]) throws {
        let total = prefix.count + chunks.reduce(0) { $0 + $1.count }
        try sendAll(PDFrameHeader(kind: kind, length: UInt64(total)).bytes + prefix)
        for chunk in chunks { try sendAll(chunk) }
    }

    private func sendAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try sendAll($0) }
    }

    func sendAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            try wait(for: Int16(POLLOUT))
            let n = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw TransferError("sending to \(peer) failed: \(String(cString: strerror(errno)))", peerFailed: true)
            }
            offset += n
        }
    }

    // MARK: Reading

    /// The next frame's header, or nil when the peer closed the connection cleanly between frames.
    func receiveHeader(tick: (() throws -> Void)? = nil) throws -> PDFrameHeader? {
        var bytes = [UInt8](repeating: 0, count: PDFrameHeader.size)
        let got = try bytes.withUnsafeMutableBytes { try receive(into: $0, allowEOF: true, tick: tick) }
        guard got else { return nil }
        do { return try PDFrameHeader(decoding: bytes) } catch {
            throw TransferError("bad frame from \(peer): \(error)")
        }
    }

    /// A control frame's JSON payload, decoded.
    func receivePayload<T: Decodable>(_ header: PDFrameHeader, as type: T.Type) throws -> T {
        let bytes = try receiveBytes(header.length)
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
            throw TransferError("malformed \(header.kind) message from \(peer): \(error)")
        }
    }

    func receiveBytes(_ length: UInt64) throws -> [UInt8] {
        guard length <= UInt64(PDFrameHeader.maxControlPayload) else {
            throw TransferError("a frame of \(length) bytes from \(peer) exceeds the limit of \(PDFrameHeader.maxControlPayload)")
        }
        var bytes = [UInt8](repeating: 0, count: Int(length))
        _ = try bytes.withUnsafeMutableBytes { try receive(into: $0, allowEOF: false, tick: nil) }
        return bytes
    }

    /// The next frame, which must be `kind` (a `failure` frame is thrown as the peer's message).
    func expect<T: Decodable>(_ kind: PDFrameHeader.Kind, as type: T.Type) throws -> T {
        guard let header = try receiveHeader() else { throw TransferError("\(peer) closed the connection", peerFailed: true) }
        if header.kind == .failure { throw TransferError(try receivePayload(header, as: PDFailure.self).message, peerFailed: true) }
        guard header.kind == kind else { throw TransferError("expected a \(kind) frame from \(peer), got \(header.kind)") }
        return try receivePayload(header, as: type)
    }

    /// For a connection the peer only writes to in answer: throws if it sent anything (its
    /// `failure` as its message) or closed; returns at once otherwise.
    func throwIfPeerSpoke() throws {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 0) > 0 else { return }
        guard let header = try receiveHeader() else { throw TransferError("\(peer) closed the connection", peerFailed: true) }
        if header.kind == .failure { throw TransferError(try receivePayload(header, as: PDFailure.self).message, peerFailed: true) }
        throw TransferError("unexpected \(header.kind) frame from \(peer)")
    }

    /// Fills `buffer`; false only if `allowEOF` and the peer closed before the first byte.
    /// `tick` runs every 200 ms of waiting (to notice a request that ended meanwhile).
    @discardableResult
    func receive(into buffer: UnsafeMutableRawBufferPointer, allowEOF: Bool, tick: (() throws -> Void)?) throws -> Bool {
        var offset = 0
        while offset < buffer.count {
            try wait(for: Int16(POLLIN), tick: tick)
            let n = recv(fd, buffer.baseAddress! + offset, buffer.count - offset, 0)
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw TransferError("receiving from \(peer) failed: \(String(cString: strerror(errno)))", peerFailed: true)
            }
            if n == 0 {
                if allowEOF && offset == 0 { return false }
                throw TransferError("\(peer) closed the connection in the middle of a frame", peerFailed: true)
            }
            offset += n
        }
        return true
    }

    private func wait(for events: Int16, tick: (() throws -> Void)? = nil) throws {
        while true {
            let left = deadline - .now
            guard left > .zero else { throw TransferError("\(peer) did not answer in time (--kv-transfer-timeout)", peerFailed: true) }
            let ms = min(200, Int(left.inSeconds * 1000) + 1)
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&entry, 1, Int32(ms))
            if n > 0 { return }
            if n < 0 && errno != EINTR { throw TransferError("poll: \(String(cString: strerror(errno)))") }
            try tick?()
        }
    }
}
