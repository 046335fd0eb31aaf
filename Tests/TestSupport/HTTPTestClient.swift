import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP response as a test sees it.
public struct HTTPTestResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data
    public init(status: Int, headers: [String: String], body: Data) {
        self.status = status
        self.headers = headers
        self.body = body
    }
    public var text: String { String(decoding: body, as: UTF8.self) }

    public func json() -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
    }

    /// The `data:` payloads of a server-sent event stream, `[DONE]` included.
    public var events: [String] {
        text.components(separatedBy: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
    }
}

public struct HTTPTestError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// A blocking HTTP/1.1 client over a plain loopback socket for tests: every read is bounded
/// by `timeout` seconds, so no test can hang on a server that stopped answering.
public struct HTTPTestClient: Sendable {
    public var port: Int
    public var timeout: Double

    public init(port: Int, timeout: Double = 120) {
        self.port = port
        self.timeout = timeout
    }

    public func get(_ path: String, headers: [String: String] = [:]) throws -> HTTPTestResponse {
        try request("GET", path, headers: headers, body: nil)
    }

    public func post(_ path: String, json: [String: Any], headers: [String: String] = [:]) throws -> HTTPTestResponse {
        try request("POST", path, headers: headers, body: try JSONSerialization.data(withJSONObject: json))
    }

    public func post(_ path: String, body: Data, headers: [String: String] = [:]) throws -> HTTPTestResponse {
        try request("POST", path, headers: headers, body: body)
    }

    /// Sends a request and reads the whole response (the connection is closed after it).
    /// `hangUpWhen`: called with the number of `data:` events received so far after each read;
    /// true closes the connection there, as a client that goes away.
    public func request(_ method: String, _ path: String, headers: [String: String] = [:], body: Data?,
                        hangUpWhen: (@Sendable (_ events: Int) -> Bool)? = nil) throws -> HTTPTestResponse {
        let fd = try connect()
        defer { close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body {
            if headers["Content-Type"] == nil { head += "Content-Type: application/json\r\n" }
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        try send(fd, Data(head.utf8) + (body ?? Data()))

        var raw = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 {
                raw.append(contentsOf: buffer[0..<count])
                if let hangUpWhen, hangUpWhen(String(decoding: raw, as: UTF8.self).components(separatedBy: "data: ").count - 1) {
                    break
                }
            } else if count == 0 {
                break
            } else {
                throw HTTPTestError(description: "\(method) \(path) on port \(port): no answer within \(timeout) s (\(String(cString: strerror(errno))))")
            }
        }
        return try Self.parse(raw, what: "\(method) \(path)")
    }

    private func connect() throws -> Int32 {
        try connectToLoopback(port: port, timeout: timeout)
    }

    private func send(_ fd: Int32, _ data: Data) throws {
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < bytes.count {
                let sent = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                // The server may answer (413) and close before reading the whole body.
                if sent <= 0 { if errno == EPIPE || errno == ECONNRESET { return }; throw HTTPTestError(description: "send failed") }
                offset += sent
            }
        }
    }

    public static func parse(_ raw: Data, what: String) throws -> HTTPTestResponse {
        let bytes = [UInt8](raw)
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else {
            throw HTTPTestError(description: "\(what): incomplete response (\(bytes.count) bytes)")
        }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw HTTPTestError(description: "\(what): bad status line '\(lines[0])'")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(bytes[(end + 4)...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return HTTPTestResponse(status: status, headers: headers, body: Data(body))
    }

    /// Undoes chunked transfer encoding (tolerating a stream cut short).
    public static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = (index..<max(index, bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }),
                  let size = Int(String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";").first ?? "", radix: 16)
            else { break }
            if size == 0 { break }
            let start = lineEnd + 2
            let stop = min(start + size, bytes.count)
            output += bytes[start..<stop]
            index = stop + 2
        }
        return output
    }
}
