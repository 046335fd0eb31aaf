import Foundation
import Glibc
import Synchronization

/// A TCP socket bound to 127.0.0.1 and listening, held until this object goes away: a port
/// that stays taken for as long as the test keeps it. Port 0 lets the kernel pick a free one.
public final class HeldPort: Sendable {
    public let port: Int
    private let fd: Int32

    public init(port: Int = 0) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = loopbackAddress(port: port)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let held = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard held else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw TestFailure("cannot hold 127.0.0.1:\(port): \(reason)")
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

/// `count` distinct free ports on 127.0.0.1, each reserved for the rest of this test process.
///
/// Why reserved: a port released right away can be handed to someone else (another test's
/// port, a connection's local port) before the process the test starts binds it. Each port
/// stays bound on the wildcard address with SO_REUSEADDR and never listens: Linux then gives
/// it to no bind to port 0 and to no outgoing connection, while the server under test (also
/// SO_REUSEADDR, as NIO, nginx, redis and the workers are) binds and listens on it, and a
/// connection to it with nobody listening is still refused. The supervisor plans its ports
/// the same way (FleetPlanning's HeldPorts).
public func freeLoopbackPorts(_ count: Int) throws -> [Int] {
    try (0..<count).map { _ in try reservePort() }
}

private let reservedPorts = Mutex<[Int32]>([])

private func reservePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
    var reuse: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = INADDR_ANY
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else {
        let reason = String(cString: strerror(errno))
        close(fd)
        throw TestFailure("cannot reserve a port: \(reason)")
    }
    reservedPorts.withLock { $0.append(fd) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A port on 127.0.0.1 that was free a moment ago.
public func freeLoopbackPort() throws -> Int { try freeLoopbackPorts(1)[0] }

/// An HTTP answer: the status code and the body.
public struct HTTPReply: Sendable, Equatable {
    public var status: Int
    public var body: String
}

/// One HTTP/1.0 request to 127.0.0.1:`port` over a plain socket; nil when nothing answers
/// (refused, reset, or silent for `timeout` on a send or a receive).
public func httpRequest(_ method: String, port: Int, path: String, body: Data? = nil,
                        contentType: String = "application/json", timeout: Duration = .seconds(5)) -> HTTPReply? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    let (seconds, attoseconds) = timeout.components
    var limit = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    var address = loopbackAddress(port: port)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return nil }
    var head = "\(method) \(path) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    if let body { head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n" }
    let request = Array((head + "\r\n").utf8) + Array(body ?? Data())
    var sent = 0
    while sent < request.count {
        let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard count > 0 else { return nil }
        sent += count
    }
    var data = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count > 0 { data += buffer[0..<count] } else if count == 0 { break } else { return nil }
    }
    let text = String(decoding: data, as: UTF8.self)
    guard let statusLine = text.split(separator: "\r\n", maxSplits: 1).first else { return nil }
    let fields = statusLine.split(separator: " ")
    guard fields.count >= 2, fields[0].hasPrefix("HTTP/"), let status = Int(fields[1]) else { return nil }
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return HTTPReply(status: status, body: body)
}

public func httpGet(port: Int, path: String, timeout: Duration = .seconds(5)) -> HTTPReply? {
    httpRequest("GET", port: port, path: path, timeout: timeout)
}

public func httpPost(port: Int, path: String, body: Data, contentType: String = "application/json",
                     timeout: Duration = .seconds(5)) -> HTTPReply? {
    httpRequest("POST", port: port, path: path, body: body, contentType: contentType, timeout: timeout)
}

/// A sockaddr_in for 127.0.0.1:port.
public func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return address
}

/// A blocking TCP socket connected to 127.0.0.1:port, whose reads and writes give up after
/// `timeout` seconds (so no test hangs on a server that stopped answering).
public func connectToLoopback(port: Int, timeout: Double) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HTTPTestError(description: "socket failed") }
    var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    var address = loopbackAddress(port: port)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        throw HTTPTestError(description: "cannot connect to 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
    }
    return fd
}
