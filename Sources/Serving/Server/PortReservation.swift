import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket held open for the process's life: the ports api-server reserves for
/// prefill–decode transfer (`--cache-queue-port`, `--pd-comm-port`, `--rdma-comm-ports`), so
/// that a clash shows up now, not when disaggregation starts using them.
public final class PortReservation: Sendable {
    public let port: Int
    /// The listening socket: a decode instance accepts PD connections on it.
    public let descriptor: Int32

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Binds and listens on `host:port`; `flag` names the port in the error.
    public init(host: String, port: Int, flag: String) throws {
        self.port = port
        descriptor = try Self.bind(host: host, port: port, flag: flag)
    }

    deinit { close(descriptor) }

    /// Whether `host:port` can be bound now (checked before the HTTP listeners start, so a
    /// port in use is a clear configuration error).
    public static func check(host: String, port: Int, flag: String) throws {
        close(try bind(host: host, port: port, flag: flag))
    }

    private static func bind(host: String, port: Int, flag: String) throws -> Int32 {
        guard (1...65535).contains(port) else { throw Failure(description: "\(flag) \(port) is not a port number (1-65535)") }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let info = list else {
            throw Failure(description: "\(flag): cannot resolve host \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { throw Failure(description: "\(flag) \(port): socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard Glibc.bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "\(flag) \(port) on \(host) cannot be used: \(reason)")
        }
        return fd
    }
}
