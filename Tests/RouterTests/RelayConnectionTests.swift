import Foundation
import Synchronization
import Testing
import TestSupport

/// The relayed routes are answered in the connection's pipeline in front of Hummingbird
/// (RelayChannelHandler): on one kept-alive connection, relayed and router requests follow each
/// other in order, one by one or pipelined; the router's own answers carry the request id.
@Suite struct RelayConnectionTests {
    static let completion = #"{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":" Paris.","finish_reason":"length"}]}"#

    static func body(_ n: Int) -> String { #"{"model":"m","prompt":"Hello \#(n)","max_tokens":2}"# }

    @Test func aKeptAliveConnectionServesRelayedAndRouterRequestsInOrder() throws {
        let worker = try RecordingHTTPServer { request in
            request.path.hasPrefix("/v1/") ? (200, Self.completion) : (request.path == "/health" ? (200, "{}") : (404, "{}"))
        }
        defer { worker.stop() }
        let router = try RouterProcess(["--worker-urls", "http://127.0.0.1:\(worker.port)", "--health-check-interval", "3600"])
        defer { router.stop() }
        try router.waitForHealthyWorkers(1)
        let connection = try KeptAliveConnection(port: router.port)

        // One by one.
        let relayed = try connection.exchange(KeptAliveConnection.request("POST", "/v1/completions", headers: ["X-Request-Id": "one-1"],
                                                                          body: Self.body(1)))
        #expect(relayed.status == 200)
        #expect(relayed.text == Self.completion)
        #expect(relayed.headers["x-request-id"] == "one-1")
        let alive = try connection.exchange(KeptAliveConnection.request("GET", "/liveness"))
        #expect(alive.status == 200)
        #expect(alive.text == #"{"status":"alive"}"#)
        let chat = try connection.exchange(KeptAliveConnection.request("POST", "/v1/chat/completions?x=1", headers: ["X-Request-Id": "one-2"],
                                                                       body: Self.body(2)))
        #expect(chat.status == 200)
        #expect(chat.headers["x-request-id"] == "one-2")
        let unknown = try connection.exchange(KeptAliveConnection.request("GET", "/v1/completions"))
        #expect(unknown.status == 404)
        #expect(try connection.exchange(KeptAliveConnection.request("GET", "/readiness")).status == 200)

        // Pipelined: all sent at once, answered in order; a body in chunks is relayed whole.
        try connection.send(KeptAliveConnection.request("POST", "/v1/completions", headers: ["X-Request-Id": "pipe-1"], body: Self.body(3))
            + KeptAliveConnection.request("GET", "/health")
            + KeptAliveConnection.request("POST", "/v1/completions", headers: ["X-Request-Id": "pipe-2"],
                                          chunks: [String(Self.body(4).prefix(10)), String(Self.body(4).dropFirst(10))])
            + KeptAliveConnection.request("GET", "/liveness")
            + KeptAliveConnection.request("POST", "/v1/completions", headers: ["X-Request-Id": "pipe-3"], body: Self.body(5)))
        let answers = try (0..<5).map { _ in try connection.response() }
        #expect(answers.map(\.status) == [200, 200, 200, 200, 200])
        #expect(answers.map { $0.headers["x-request-id"] } == ["pipe-1", nil, "pipe-2", nil, "pipe-3"])
        #expect(answers.map(\.text) == [Self.completion, #"{"status":"healthy"}"#, Self.completion, #"{"status":"alive"}"#, Self.completion])

        // A client that closes its sending side after its request still gets the answer.
        let halfClosed = try KeptAliveConnection(port: router.port)
        try halfClosed.send(KeptAliveConnection.request("POST", "/v1/completions", headers: ["X-Request-Id": "half-1"], body: Self.body(6)))
        halfClosed.finishSending()
        let last = try halfClosed.response()
        #expect(last.status == 200)
        #expect(last.headers["x-request-id"] == "half-1")

        let bodies = worker.requests.filter { $0.path.hasPrefix("/v1/") }
        #expect(bodies.map(\.body) == [1, 2, 3, 4, 5, 6].map(Self.body))
        #expect(bodies.map { $0.headers["x-request-id"] } == ["one-1", "one-2", "pipe-1", "pipe-2", "pipe-3", "half-1"])
        #expect(try router.metric("tandem_router_requests_total") == 6)
    }

    /// Holds callers until it is opened (then lets every one through).
    final class Gate: Sendable {
        private let semaphore = DispatchSemaphore(value: 0)
        private let open = Mutex(false)

        func pass() {
            if !open.withLock({ $0 }) { semaphore.wait() }
        }

        func openUp() {
            open.withLock { $0 = true }
            for _ in 0..<8 { semaphore.signal() }
        }
    }

    /// A worker that holds every completion request until `release()`.
    final class HeldWorker: Sendable {
        let server: RecordingHTTPServer
        private let gate: Gate

        init() throws {
            let gate = Gate()
            self.gate = gate
            server = try RecordingHTTPServer { request in
                guard request.path == "/v1/completions" else { return (200, "{}") }
                gate.pass()
                return (200, RelayConnectionTests.completion)
            }
        }

        var url: String { "http://127.0.0.1:\(server.port)" }

        func release() { gate.openUp() }

        deinit {
            release()
            server.stop()
        }
    }

    static func post(_ router: RouterProcess, id: String?, body: String = body(0)) throws -> HTTPTestResponse {
        try post(router.client, id: id, body: body)
    }

    static func post(_ client: HTTPTestClient, id: String?, body: String = body(0)) throws -> HTTPTestResponse {
        try client.post("/v1/completions", body: Data(body.utf8), headers: id.map { ["X-Request-Id": $0] } ?? [:])
    }

    /// A router with one admission slot (plus `arguments`) in front of a worker that holds its
    /// answers: while a first request holds the slot, a second one, with id `id`, gets the
    /// router's `status` with error code `code` and its id; then the worker answers and the held
    /// request succeeds.
    static func expectRefusedWhileSlotHeld(_ arguments: [String], id: String, status: Int, code: String,
                                           sourceLocation: SourceLocation = #_sourceLocation) throws {
        let worker = try HeldWorker()
        let router = try RouterProcess(["--worker-urls", worker.url, "--health-check-interval", "3600", "--max-concurrent-requests", "1"]
            + arguments)
        defer { router.stop() }
        try router.waitForHealthyWorkers(1)
        let held = Mutex<HTTPTestResponse?>(nil)
        let client = router.client
        let holder = Thread { held.withLock { $0 = try? post(client, id: "holder") } }
        holder.start()
        try router.waitUntil("the worker has the first request") { worker.server.requests(to: "/v1/completions").count == 1 }
        let refused = try post(router, id: id)
        #expect(refused.status == status, sourceLocation: sourceLocation)
        #expect(refused.headers["x-request-id"] == id, sourceLocation: sourceLocation)
        #expect(refused.text.contains(#""code":"\#(code)""#), sourceLocation: sourceLocation)
        worker.release()
        try router.waitUntil("the first request is answered") { held.withLock { $0 } != nil }
        #expect(held.withLock { $0?.status } == 200, sourceLocation: sourceLocation)
    }

    @Test func theRoutersOwnAnswersCarryTheRequestID() throws {
        // 503 (no worker), 413 (body too large): the client's id, or a new one.
        let empty = try RouterProcess(["--max-body-bytes", "1024"])
        defer { empty.stop() }
        let none = try Self.post(empty, id: "err-503")
        #expect(none.status == 503)
        #expect(none.headers["x-request-id"] == "err-503")
        #expect(none.text == #"{"error":{"code":"no_worker","message":"No healthy mixed worker is available.","param":null,"type":"service_unavailable"}}"#)
        #expect(try Self.post(empty, id: nil).headers["x-request-id"]?.hasPrefix("router-") == true)
        let large = try Self.post(empty, id: "err-413", body: #"{"prompt":""# + String(repeating: "x", count: 2000) + #""}"#)
        #expect(large.status == 413)
        #expect(large.headers["x-request-id"] == "err-413")
        #expect(large.text == #"{"error":{"code":"request_too_large","message":"The request body is larger than the limit of 1024 bytes.","param":null,"type":"invalid_request_error"}}"#)

        // 502: the worker fails every try.
        let failing = try RecordingHTTPServer { request in request.path == "/health" ? (200, "{}") : (500, #"{"error":"boom"}"#) }
        defer { failing.stop() }
        let failed = try RouterProcess(["--worker-urls", "http://127.0.0.1:\(failing.port)", "--health-check-interval", "3600",
                                        "--retry-max-retries", "1", "--retry-initial-backoff-ms", "1", "--retry-max-backoff-ms", "1"])
        defer { failed.stop() }
        try failed.waitForHealthyWorkers(1)
        let badGateway = try Self.post(failed, id: "err-502")
        #expect(badGateway.status == 502)
        #expect(badGateway.headers["x-request-id"] == "err-502")
        #expect(badGateway.json()?["error"].flatMap { ($0 as? [String: Any])?["code"] as? String } == "upstream_failed")

        // 504: the worker does not answer within --request-timeout.
        let slow = try HeldWorker()
        let timing = try RouterProcess(["--worker-urls", slow.url, "--health-check-interval", "3600", "--request-timeout", "0.3"])
        defer { timing.stop() }
        try timing.waitForHealthyWorkers(1)
        let late = try Self.post(timing, id: "err-504")
        #expect(late.status == 504)
        #expect(late.headers["x-request-id"] == "err-504")
        slow.release()

        // 429: the only slot is taken and nobody may wait.
        try Self.expectRefusedWhileSlotHeld(["--queue-size", "0"], id: "err-429", status: 429, code: "queue_full")
        // 408: the only slot is taken and the wait runs out.
        try Self.expectRefusedWhileSlotHeld(["--queue-size", "1", "--queue-timeout", "0.2"], id: "err-408", status: 408, code: "queue_timeout")
    }
}
