extension TransferProtocol {
    /// The PD contract's rule (docs/DESIGN.md), for the router and the Redis scheduler alike:
    /// `ipc` when P and D are on one host and both offer it, else `tcp` when both offer it (an
    /// instance that lists none is taken to offer tcp); nil when they share no protocol.
    public static func between(prefillHost: String, offeredByPrefill: [TransferProtocol],
                               decodeHost: String, offeredByDecode: [TransferProtocol]) -> TransferProtocol? {
        let offeredP = offeredByPrefill.isEmpty ? [.tcp] : offeredByPrefill
        let offeredD = offeredByDecode.isEmpty ? [.tcp] : offeredByDecode
        if sameHost(prefillHost, decodeHost), offeredP.contains(.ipc), offeredD.contains(.ipc) { return .ipc }
        if offeredP.contains(.tcp), offeredD.contains(.tcp) { return .tcp }
        return nil
    }

    /// Whether two advertised hosts are the same machine (loopback names all are).
    public static func sameHost(_ a: String, _ b: String) -> Bool {
        let loopback: Set<String> = ["127.0.0.1", "localhost", "::1", "[::1]"]
        return a == b || (loopback.contains(a) && loopback.contains(b))
    }
}
