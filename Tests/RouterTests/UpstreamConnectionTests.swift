import Foundation
import Testing
import TestSupport

/// The router's kept-alive connections to workers, against a recording worker that answers one
/// request per connection: once saying so (`Connection: close`), once promising to keep it
/// open and then dropping the next request sent on it, like a worker closing an idle connection
/// just as the router reuses it.
@Suite struct UpstreamConnectionTests {
    static let completion = #"{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":" Paris.","finish_reason":"length"}]}"#

    @Test(arguments: [false, true])
    func everyRequestReachesTheWorkerOnceWithItsBodyAndRequestID(dropsReusedConnections: Bool) throws {
        let worker = try RecordingHTTPServer(dropsReusedConnections: dropsReusedConnections) { request in
            request.path == "/v1/completions" ? (200, Self.completion) : (request.path == "/health" ? (200, "{}") : (404, "{}"))
        }
        defer { worker.stop() }
        let router = try RouterProcess(["--worker-urls", "http://127.0.0.1:\(worker.port)", "--health-check-interval", "3600"])
        defer { router.stop() }
        try router.waitForHealthyWorkers(1)

        let bodies = (0..<5).map { #"{"model":"m","prompt":"Hello \#($0)","max_tokens":2}"# }
        for (index, body) in bodies.enumerated() {
            let reply = try router.client.post("/v1/completions", body: Data(body.utf8), headers: ["X-Request-Id": "relay-\(index)"])
            #expect(reply.status == 200)
            #expect(reply.text == Self.completion)
            #expect(reply.headers["x-request-id"] == "relay-\(index)")
        }
        let relayed = worker.requests(to: "/v1/completions")
        #expect(relayed.map(\.body) == bodies)
        #expect(relayed.map { $0.headers["x-request-id"] } == (0..<5).map { "relay-\($0)" })
        #expect(relayed.allSatisfy { $0.method == "POST" && $0.headers["host"] == "127.0.0.1:\(worker.port)" })
        // A dropped connection is replaced inside the client: no request was retried on the
        // worker level (that would have left the only worker out and failed with 502).
        #expect(try router.metric("tandem_router_retries_total") == 0)
    }
}
