import Foundation
import Synchronization
import TestSupport

/// A prefill instance P and a decode instance D (real api-server processes) and the test
/// playing the router: it sends both legs of a PD request at once, as the contract says.
final class PDPair: @unchecked Sendable {
    // @unchecked Sendable: every stored property is a let; other threads only send HTTP
    // requests through the (Sendable) clients; the test's own thread starts and stops processes.
    let prefill: APIServerProcess
    let decode: APIServerProcess
    let decodePorts: (pdComm: Int, cacheQueue: Int)
    let prefillControlPort: Int
    let decodeControlPort: Int

    init(prefillArguments: [String] = [], decodeArguments: [String] = [], common: [String] = []) throws {
        let ports = try freeLoopbackPorts(4)
        decodePorts = (ports[0], ports[1])
        prefillControlPort = ports[2]
        decodeControlPort = ports[3]
        prefill = try APIServerProcess(["--splitwise-role", "prefill", "--engine-worker-queue-port", String(ports[2])]
            + common + prefillArguments, waitUntilHealthy: false)
        decode = try APIServerProcess(["--splitwise-role", "decode", "--pd-comm-port", String(ports[0]),
                                       "--cache-queue-port", String(ports[1]), "--engine-worker-queue-port", String(ports[3])]
            + common + decodeArguments, waitUntilHealthy: false)
        try prefill.waitUntil("/health is 200") { (try? prefill.client.get("/health"))?.status == 200 }
        try decode.waitUntil("/health is 200") { (try? decode.client.get("/health"))?.status == 200 }
    }

    func stop() {
        prefill.stop()
        decode.stop()
    }

    func info(role: String, id: String, protocol transfer: String) -> [String: Any] {
        [
            "role": role, "request_id": id, "transfer_protocol": transfer,
            "prefill": ["host": "127.0.0.1", "port": prefill.port],
            "decode": ["host": "127.0.0.1", "port": decode.port, "pd_comm_port": decodePorts.pdComm,
                       "cache_queue_port": decodePorts.cacheQueue],
        ]
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
