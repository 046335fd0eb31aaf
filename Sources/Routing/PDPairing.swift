import Foundation
import PDProtocol

/// What the router adds to a PD request for each leg (the PD contract in docs/DESIGN.md).
public enum PDPairing {
    /// The transfer protocol for this pair (`TransferProtocol.between`, the contract's rule).
    public static func transferProtocol(prefill: WorkerRegistration, decode: WorkerRegistration) -> TransferProtocol? {
        TransferProtocol.between(prefillHost: prefill.endpoint.host, offeredByPrefill: prefill.transferProtocols,
                                 decodeHost: decode.endpoint.host, offeredByDecode: decode.transferProtocols)
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
