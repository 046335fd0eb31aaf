import Glibc
import Synchronization

/// Asks the kernel about ports. Injectable so tests can pretend a port is taken; the live
/// prober really binds.
public struct PortProber: Sendable {
    /// True when the port can be bound now.
    public var isFree: @Sendable (Int) -> Bool
    /// A port the kernel picks as free (bind to port 0), or nil when it cannot.
    public var freePort: @Sendable () -> Int?

    public init(isFree: @escaping @Sendable (Int) -> Bool, freePort: @escaping @Sendable () -> Int?) {
        self.isFree = isFree
        self.freePort = freePort
    }

    /// Real binds (with SO_REUSEADDR, like the workers) on `host`, and on the wildcard
    /// address too, since workers listen on every address by default. Every port found free
    /// stays held for the life of this process (see `HeldPorts`), so that no one else is
    /// given it between planning and the moment its worker binds.
    public static func live(host: String) -> PortProber {
        PortProber(
            isFree: { port in
                guard bindProbe(host: host, port: port) != nil else { return false }
                return HeldPorts.hold(port) != nil
            },
            freePort: { HeldPorts.hold(0) }
        )
    }
}

/// Ports this process planned, each kept bound on the wildcard address (SO_REUSEADDR, never
/// listening) until the process exits.
///
/// Why: planning used to bind a port and release it, and the worker bound it later; in
/// between, another planner's bind to port 0 or any connection's local port could take it,
/// and the rank died with "port in use". While a bound socket holds the port, Linux gives it
/// to no bind to port 0 and to no outgoing connection, yet the worker, also SO_REUSEADDR,
/// can still bind and listen on it: a listener may share its port with bound, non-listening
/// SO_REUSEADDR sockets. A restarted rank finds its ports still reserved.
enum HeldPorts {
    private static let sockets = Mutex<[Int: Int32]>([:])

    /// Holds `port` (0: a kernel-chosen free one) and returns it; nil when it cannot be bound.
    static func hold(_ port: Int) -> Int? {
        sockets.withLock { held in
            if held[port] != nil { return port }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return nil }
            guard let bound = bindSocket(fd, host: "0.0.0.0", port: port) else {
                close(fd)
                return nil
            }
            held[bound] = fd
            return bound
        }
    }
}

/// Binds a TCP socket to host:port and closes it; returns the bound port, or nil.
private func bindProbe(host: String, port: Int) -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    return bindSocket(fd, host: host, port: port)
}

/// Binds `fd` (with SO_REUSEADDR) to host:port; returns the bound port, or nil.
private func bindSocket(_ fd: Int32, host: String, port: Int) -> Int? {
    var yes: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
        }
    }
    return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
}

/// An IPv4 address the probes can use (`localhost` is taken as 127.0.0.1).
func probeAddress(_ host: String) throws(PlanningError) -> String {
    let address = host == "localhost" ? "127.0.0.1" : host
    var parsed = in_addr()
    guard inet_pton(AF_INET, address, &parsed) == 1 else {
        throw PlanningError("--host must be an IPv4 address, got '\(host)'")
    }
    return address
}
