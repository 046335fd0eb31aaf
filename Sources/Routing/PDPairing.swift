import Foundation
import PDProtocol

/// What the router adds to a PD request for each leg (the PD contract in docs/DESIGN.md).
public enum PDPairing {
    /// `ipc` when P and D are on one host and both offer it, else `tcp` when both offer it (an
    /// instance that lists none is taken to offer tcp); nil when they share no protocol.
    public static func transferProtocol(prefill: WorkerRegistration, decode: WorkerRegistration) -> TransferProtocol? {
        let offeredP = prefill.transferProtocols.isEmpty ? [.tcp] : prefill.transferProtocols
        let offeredD = decode.transferProtocols.isEmpty ? [.tcp] : decode.transferProtocols
        if sameHost(prefill.endpoint.host, decode.endpoint.host), offeredP.contains(.ipc), offeredD.contains(.ipc) { return .ipc }
        if offeredP.contains(.tcp), offeredD.contains(.tcp) { return .tcp }
        return nil
    }

    public static func sameHost(_ a: String, _ b: String) -> Bool {
        let loopback: Set<String> = ["127.0.0.1", "localhost", "::1", "[::1]"]
        return a == b || (loopback.contains(a) && loopback.contains(b))
    }

    /// The two legs' bodies: the client's JSON plus `disaggregate_info`; P's is never streamed.
    public static func legBodies(_ body: [String: Any], prefill: WorkerRegistration, decode: WorkerRegistration, requestID: String,
                          transferProtocol: TransferProtocol) throws -> (prefill: Data, decode: Data) {
        func info(_ role: SplitwiseRole) throws -> Any {
            let value = DisaggregateInfo(role: role, requestID: requestID, prefill: prefill.endpoint, decode: decode.endpoint,
                                         transferProtocol: transferProtocol)
            return try JSONSerialization.jsonObject(with: JSONEncoder().encode(value))
        }
        var prefillBody = body
        prefillBody["disaggregate_info"] = try info(.prefill)
        prefillBody["stream"] = false
        prefillBody["stream_options"] = nil
        var decodeBody = body
        decodeBody["disaggregate_info"] = try info(.decode)
        return (try JSONSerialization.data(withJSONObject: prefillBody), try JSONSerialization.data(withJSONObject: decodeBody))
    }
}
