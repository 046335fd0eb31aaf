#if canImport(Glibc)
import Glibc
#endif

extension PeerEndpoint {
    /// The host an instance names itself by in the router's table, from the address it listens
    /// on: that address, unless it is a wildcard (`0.0.0.0`, `::`, empty), which no peer can
    /// dial; then this machine's host name. The worker registers under it, and its supervisor
    /// uses the same rule to take the worker out of the router, so both name the same URL.
    public static func advertisedHost(listeningOn address: String) -> String {
        guard ["", "0.0.0.0", "::", "[::]"].contains(address) else { return address }
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "127.0.0.1" }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
