import Foundation
import Glibc
import Synchronization

/// A small HTTP/1.1 listener on 127.0.0.1 for unit-level tests of HTTP clients (a stand-in
/// for a router receiving registrations): it records every request and answers each with
/// what `respond` returns, then closes the connection. Connections are served one at a time.
/// `dropsReusedConnections`: answers promise to keep the connection open ("keep-alive"), and
/// the next request on it is dropped unanswered and unrecorded as the connection is closed
/// (a server closing an idle kept-alive connection just as a client reuses it); connections
/// are then served on a thread each. `keepsConnectionsAlive`: every connection (on a thread
/// each) is answered request after request until the client closes it, as a real worker does.
public final class RecordingHTTPServer: Sendable {
    public struct Request: Sendable, Equatable {
        public var method: String
        public var path: String
        /// Header names in lower case.
        public var headers: [String: String]
        public var body: String

        /// The body as a JSON object, when it is one.
        public var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        }
    }

    public let port: Int
    private let fd: Int32
    private let recorded = Mutex<[Request]>([])
    private let respond: @Sendable (Request) -> (status: Int, body: String)
    private let dropsReusedConnections: Bool
    private let keepsConnectionsAlive: Bool
    private let stopped = Atomic<Bool>(false)

    /// On `port` (0: one the kernel picks). `respond` runs on the listener's thread before the answer is sent.
    public init(port: Int = 0, dropsReusedConnections: Bool = false, keepsConnectionsAlive: Bool = false, respond: @escaping @Sendable (Request) -> (status: Int, body: String) = { _ in (200, #"{"status":"ok"}"#) }) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = loopbackAddress(port: port)
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 64) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard listening else {
            close(fd)
            throw TestFailure("cannot listen on 127.0.0.1: \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        self.respond = respond
        self.dropsReusedConnections = dropsReusedConnections
        self.keepsConnectionsAlive = keepsConnectionsAlive
        self.port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in serve() }
    }

    deinit { stop() }

    /// Stops accepting (wakes the listener's thread, which closes the socket). Once only: a
    /// second shutdown could hit another socket that got the closed descriptor's number.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Every request received so far, in order.
    public var requests: [Request] { recorded.withLock { $0 } }

    public func requests(to path: String) -> [Request] { requests.filter { $0.path == path } }

    private func serve() {
        while true {
            let connection = accept(fd, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                break
            }
            var limit = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            if keepsConnectionsAlive {
                Thread.detachNewThread { [self] in
                    while answer(connection, keepAlive: true) {}
                    close(connection)
                }
            } else if dropsReusedConnections {
                Thread.detachNewThread { [self] in answerOnce(connection) }
            } else {
                answerOnce(connection)
            }
        }
        close(fd)
    }

    private func answerOnce(_ connection: Int32) {
        if answer(connection, keepAlive: dropsReusedConnections), dropsReusedConnections { _ = Self.read(connection) }
        close(connection)
    }

    /// Reads and answers one request; false when none came.
    private func answer(_ connection: Int32, keepAlive: Bool) -> Bool {
        guard let request = Self.read(connection) else { return false }
        recorded.withLock { $0.append(request) }
        let (status, body) = respond(request)
        let answer = "HTTP/1.1 \(status) \(status == 200 ? "OK" : "Error")\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n\(body)"
        _ = Array(answer.utf8).withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return true
    }

    /// One request: the head up to the blank line, then Content-Length bytes of body.
    private static func read(_ connection: Int32) -> Request? {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 16384)
        var headEnd: Int?
        var contentLength = 0
        while headEnd == nil || data.count < headEnd! + 4 + contentLength {
            let count = recv(connection, &buffer, buffer.count, 0)
            guard count > 0 else { return nil }
            data += buffer[0..<count]
            if headEnd == nil, let range = findBlankLine(data) {
                headEnd = range
                let head = String(decoding: data[..<range], as: UTF8.self)
                for line in head.split(separator: "\r\n").dropFirst() {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    if parts.count == 2, parts[0].lowercased() == "content-length" {
                        contentLength = Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
                    }
                }
            }
        }
        let head = String(decoding: data[..<headEnd!], as: UTF8.self).split(separator: "\r\n")
        let requestLine = head.first?.split(separator: " ") ?? []
        guard requestLine.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        let body = String(decoding: data[(headEnd! + 4)..<(headEnd! + 4 + contentLength)], as: UTF8.self)
        return Request(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers, body: body)
    }

    private static func findBlankLine(_ data: [UInt8]) -> Int? {
        guard data.count >= 4 else { return nil }
        for index in 0...(data.count - 4) where data[index] == 13 && data[index + 1] == 10 && data[index + 2] == 13 && data[index + 3] == 10 {
            return index
        }
        return nil
    }
}
