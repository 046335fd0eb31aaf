import Foundation
import Glibc
import TestSupport

/// One HTTP/1.1 connection kept open over several requests, written raw: requests are sent
/// as given (one by one, or several at once: pipelined) and responses read back in order,
/// framed by Content-Length or chunked encoding.
final class KeptAliveConnection {
    private let fd: Int32
    private var received: [UInt8] = []

    init(port: Int, timeout: Int = 60) throws {
        fd = try connectToLoopback(port: port, timeout: Double(timeout))
    }

    deinit { close(fd) }

    /// A request's bytes: `body` with a Content-Length, or in `chunks` with chunked encoding.
    static func request(_ method: String, _ path: String, headers: [String: String] = [:], body: String? = nil,
                        chunks: [String]? = nil) -> String {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { text += "\(name): \(value)\r\n" }
        if let body {
            text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        } else if let chunks {
            text += "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            for chunk in chunks { text += String(chunk.utf8.count, radix: 16) + "\r\n\(chunk)\r\n" }
            text += "0\r\n\r\n"
        } else {
            text += "\r\n"
        }
        return text
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw HTTPTestError(description: "send failed: \(String(cString: strerror(errno)))") }
            offset += sent
        }
    }

    /// Makes the closing of the connection (deinit) a reset, as a client that crashed or was
    /// killed: the peer sees it gone at once (a plain close reads as a half-closure).
    func resetOnClose() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    }

    /// Closes the sending side only (half-closure): responses can still be read.
    func finishSending() { shutdown(fd, Int32(SHUT_WR)) }

    /// The next response on the connection.
    func response() throws -> HTTPTestResponse {
        while true {
            if let (response, length) = try Self.parseOne(received) {
                received.removeFirst(length)
                return response
            }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else {
                throw HTTPTestError(description: "the connection ended before a whole response (\(received.count) bytes: "
                                    + "\(String(decoding: received, as: UTF8.self).prefix(300)))")
            }
            received += buffer[0..<count]
        }
    }

    /// Sends one request and reads its response.
    func exchange(_ request: String) throws -> HTTPTestResponse {
        try send(request)
        return try response()
    }

    /// A whole response at the start of `bytes`, with the bytes it took; nil when more must come.
    private static func parseOne(_ bytes: [UInt8]) throws -> (HTTPTestResponse, Int)? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4, let headEnd = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else {
            return nil
        }
        let head = try HTTPTestClient.parse(Data(bytes[..<(headEnd + 4)]), what: "a response on a kept-alive connection")
        let bodyStart = headEnd + 4
        if let length = head.headers["content-length"].flatMap({ Int($0) }) {
            guard bytes.count >= bodyStart + length else { return nil }
            return (HTTPTestResponse(status: head.status, headers: head.headers, body: Data(bytes[bodyStart..<bodyStart + length])),
                    bodyStart + length)
        }
        guard head.headers["transfer-encoding"]?.lowercased() == "chunked" else {
            throw HTTPTestError(description: "a response with neither Content-Length nor chunked encoding on a kept-alive connection")
        }
        // Chunks up to the last (size 0) and its blank line.
        var index = bodyStart
        var body: [UInt8] = []
        while true {
            guard let lineEnd = (index..<max(index, bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }) else { return nil }
            guard let size = Int(String(decoding: bytes[index..<lineEnd], as: UTF8.self), radix: 16) else {
                throw HTTPTestError(description: "a bad chunk size line")
            }
            let start = lineEnd + 2
            guard bytes.count >= start + size + 2 else { return nil }
            if size == 0 { return (HTTPTestResponse(status: head.status, headers: head.headers, body: Data(body)), start + 2) }
            body += bytes[start..<start + size]
            index = start + size + 2
        }
    }
}
