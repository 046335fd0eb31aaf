import Glibc
import SystemCalls
import Synchronization

/// What the worker's listeners share: when it started, when it counts as loaded, and
/// whether it has been told to hang.
final class WorkerState: Sendable {
    let startedAt = monotonicSeconds()
    let startupDelay: Double
    let rank: Int?
    let hung = Atomic<Bool>(false)
    let requestsServed = Atomic<Int>(0)

    init(startupDelay: Double, rank: Int?) {
        self.startupDelay = startupDelay
        self.rank = rank
    }

    var isLoaded: Bool { monotonicSeconds() - startedAt >= startupDelay }
}

/// A listening TCP socket on one of the worker's ports. Every port kind is bound for real
/// (so port ownership is visible to the supervisor and to `ss`); each answers minimal HTTP.
struct HTTPListener: Sendable {
    let kind: String
    let port: Int
    let fd: Int32

    /// Binds and listens; the error message names the kind and port.
    static func bind(kind: String, host: String, port: Int) throws(UsageError) -> HTTPListener {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw UsageError(message: "cannot create a socket for \(kind) port \(port)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw UsageError(message: "--host needs an IPv4 address, got '\(host)'")
        }
        do {
            _ = try systemCall("bind") {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            _ = try systemCall("listen") { listen(fd, 128) }
        } catch {
            close(fd)
            throw UsageError(message: "\(kind) port \(port): \(error.reason)")
        }
        return HTTPListener(kind: kind, port: port, fd: fd)
    }

    /// Accepts connections forever, one thread per connection so a health probe never
    /// waits behind a slow client. Once the worker hangs, it stops answering entirely.
    func serve(state: WorkerState) {
        startThread {
            while true {
                if state.hung.load(ordering: .relaxed) { sleepForever() }
                guard let client = try? systemCall("accept", { accept(fd, nil, nil) }) else { continue }
                if state.hung.load(ordering: .relaxed) { sleepForever() }
                let kind = self.kind
                startThread { answer(client: client, listenerKind: kind, state: state) }
            }
        }
    }
}

private func answer(client: Int32, listenerKind: String, state: WorkerState) {
    defer { close(client) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    guard let requestLine = readRequestLine(client) else { return }
    if state.hung.load(ordering: .relaxed) { sleepForever() }
    let parts = requestLine.split(separator: " ")
    let method = parts.count > 0 ? String(parts[0]) : ""
    let path = parts.count > 1 ? String(parts[1].split(separator: "?").first ?? "") : ""
    state.requestsServed.add(1, ordering: .relaxed)

    let (status, contentType, body): (String, String, String)
    switch (method, path, listenerKind) {
    case ("GET", "/health", "api"):
        status = state.isLoaded ? "200 OK" : "503 Service Unavailable"
        contentType = "application/json"
        body = state.isLoaded ? #"{"status":"ok"}"# : #"{"status":"loading"}"#
    case ("GET", "/metrics", "api"), ("GET", "/metrics", "metrics"):
        status = "200 OK"
        contentType = "text/plain; version=0.0.4"
        body = """
            # TYPE tandem_test_worker_loaded gauge
            tandem_test_worker_loaded \(state.isLoaded ? 1 : 0)
            # TYPE tandem_test_worker_requests_total counter
            tandem_test_worker_requests_total \(state.requestsServed.load(ordering: .relaxed))

            """
    default:
        status = "404 Not Found"
        contentType = "application/json"
        body = #"{"error":"not found"}"#
    }
    let response = "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
    try? writeAll(client, Array(response.utf8))
}

/// Reads the request head (up to 8 KiB) and returns its first line.
private func readRequestLine(_ fd: Int32) -> String? {
    var head: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 2048)
    while head.count < 8192 {
        guard let count = try? systemCall("read", { buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }),
              count > 0 else { break }
        head.append(contentsOf: buffer[0..<count])
        if head.count >= 4, head.suffix(from: max(0, head.count - count - 3)).containsEndOfHead { break }
    }
    guard let lineEnd = head.firstIndex(of: UInt8(ascii: "\r")) ?? head.firstIndex(of: UInt8(ascii: "\n")) else {
        return head.isEmpty ? nil : String(decoding: head, as: UTF8.self)
    }
    return String(decoding: head[..<lineEnd], as: UTF8.self)
}

private extension ArraySlice<UInt8> {
    var containsEndOfHead: Bool {
        let end: [UInt8] = [13, 10, 13, 10]
        guard count >= 4 else { return false }
        var index = startIndex
        while index + 4 <= endIndex {
            if Array(self[index..<index + 4]) == end { return true }
            index += 1
        }
        return false
    }
}
