import Foundation
import Synchronization
import TestSupport

/// A prefill instance P and a decode instance D (real api-server processes) and the test
/// playing the router: it sends both legs of a PD request at once, as the contract says.
final class PDPair: @unchecked Sendable {
    // @unchecked Sendable: every stored property is a let; other threads only send HTTP
    // requests through the (Sendable) clients; the test's own thread starts and stops processes.
    let prefillInstance: PDInstance
    let decodeInstance: PDInstance
    var prefill: APIServerProcess { prefillInstance.server }
    var decode: APIServerProcess { decodeInstance.server }
    var prefillControlPort: Int { prefillInstance.controlPort }
    var decodeControlPort: Int { decodeInstance.controlPort }

    init(prefillArguments: [String] = [], decodeArguments: [String] = [], common: [String] = []) throws {
        prefillInstance = try PDInstance("prefill", arguments: common + prefillArguments, waitUntilHealthy: false)
        decodeInstance = try PDInstance("decode", arguments: common + decodeArguments, waitUntilHealthy: false)
        try prefillInstance.waitUntilHealthy()
        try decodeInstance.waitUntilHealthy()
    }

    func stop() {
        prefill.stop()
        decode.stop()
    }

    func info(role: String, id: String, protocol transfer: String) -> [String: Any] {
        ["role": role, "request_id": id, "transfer_protocol": transfer,
         "prefill": prefillInstance.endpoint, "decode": decodeInstance.endpoint]
    }

    struct Legs: Sendable {
        var prefill: HTTPTestResponse
        var decode: HTTPTestResponse
    }

    /// Sends `body` as P's leg and as D's leg at once (D's with the body's own stream flag).
    func send(_ path: String = "/v1/completions", body: [String: Any], id: String = "pd-\(UUID().uuidString)",
              protocol transfer: String) throws -> Legs {
        var prefillBody = body
        prefillBody["stream"] = false
        prefillBody["disaggregate_info"] = info(role: "prefill", id: id, protocol: transfer)
        var decodeBody = body
        decodeBody["disaggregate_info"] = info(role: "decode", id: id, protocol: transfer)
        let bodies = [try JSONSerialization.data(withJSONObject: prefillBody), try JSONSerialization.data(withJSONObject: decodeBody)]
        let clients = [prefill.client, decode.client]
        // A leg whose instance was killed has no response: status 0, the error as its body.
        let responses = try concurrently(2) { index in
            do {
                return try clients[index].post(path, body: bodies[index], headers: ["X-Request-Id": id])
            } catch {
                return HTTPTestResponse(status: 0, headers: [:], body: Data("\(error)".utf8))
            }
        }
        return Legs(prefill: responses[0], decode: responses[1])
    }

    /// Both instances idle with every KV block free.
    func waitUntilIdle() throws {
        try prefill.waitUntilIdle(seconds: 60)
        try decode.waitUntilIdle(seconds: 60)
    }
}
