import Foundation
import Synchronization
import Testing
import TestSupport

/// The relay's fast path (a kept-alive worker connection idle on the client's event loop, no
/// task) keeps the task path's rules: a retryable answer is retried on another worker, a worker
/// that refuses connections is left for another, a slow worker gets the router's 504, a client
/// that leaves closes the worker's request and gives its admission slot back.
@Suite struct RelayFastPathTests {
    static let completion = RelayConnectionTests.completion

    static func post(_ connection: KeptAliveConnection, id: String) throws -> HTTPTestResponse {
        try connection.exchange(KeptAliveConnection.request("POST", "/v1/completions", headers: ["X-Request-Id": id],
                                                            body: RelayConnectionTests.body(0)))
    }

    static func ids(_ worker: RecordingHTTPServer) -> [String] {
        worker.requests(to: "/v1/completions").compactMap { $0.headers["x-request-id"] }
    }

    static let retrying = ["--policy", "round_robin", "--health-check-interval", "3600", "--retry-max-retries", "2",
                           "--retry-initial-backoff-ms", "1", "--retry-max-backoff-ms", "1"]

    @Test func aRetryableAnswerOnAKeptAliveConnectionIsRetriedOnAnotherWorker() throws {
        let failing = Mutex(false)
        let a = try RecordingHTTPServer(keepsConnectionsAlive: true) { request in
            guard request.path == "/v1/completions" else { return (200, "{}") }
            return failing.withLock { $0 } ? (503, #"{"error":"busy"}"#) : (200, Self.completion)
        }
        let b = try RecordingHTTPServer(keepsConnectionsAlive: true) { request in
            (200, request.path == "/v1/completions" ? Self.completion : "{}")
        }
        defer { a.stop(); b.stop() }
        let router = try RouterProcess(["--worker-urls", "http://127.0.0.1:\(a.port),http://127.0.0.1:\(b.port)"] + Self.retrying)
        defer { router.stop() }
        try router.waitForHealthyWorkers(2)
        let connection = try KeptAliveConnection(port: router.port)
        // Round robin: each worker answers one, and keeps its connection for the next.
        #expect(try Self.post(connection, id: "warm-1").status == 200)
        #expect(try Self.post(connection, id: "warm-2").status == 200)
        #expect(Self.ids(a).count == 1 && Self.ids(b).count == 1)

        failing.withLock { $0 = true }
        for id in ["fail-1", "fail-2"] {
            let answer = try Self.post(connection, id: id)
            #expect(answer.status == 200)
            #expect(answer.text == Self.completion)
            #expect(answer.headers["x-request-id"] == id)
        }
        let refused = Self.ids(a).filter { $0.hasPrefix("fail-") }
        #expect(!refused.isEmpty)
        #expect(Self.ids(b).filter { $0.hasPrefix("fail-") } == ["fail-1", "fail-2"])
        #expect(try router.metric("tandem_router_retries_total") == Double(refused.count))
        #expect(try router.metric("tandem_router_requests_total") == 4)
    }

    @Test func aWorkerThatRefusesConnectionsIsLeftForAnother() throws {
        let gone = try RecordingHTTPServer(keepsConnectionsAlive: true)
        let b = try RecordingHTTPServer(keepsConnectionsAlive: true) { request in
            (200, request.path == "/v1/completions" ? Self.completion : "{}")
        }
        defer { b.stop() }
        let router = try RouterProcess(["--worker-urls", "http://127.0.0.1:\(gone.port),http://127.0.0.1:\(b.port)"] + Self.retrying)
        defer { router.stop() }
        try router.waitForHealthyWorkers(2)
        gone.stop()
        let connection = try KeptAliveConnection(port: router.port)
        for id in ["r-1", "r-2", "r-3", "r-4"] {
            let answer = try Self.post(connection, id: id)
            #expect(answer.status == 200)
            #expect(answer.text == Self.completion)
        }
        #expect(Self.ids(b) == ["r-1", "r-2", "r-3", "r-4"])
        #expect(try router.metric("tandem_router_retries_total") >= 1)
    }

    @Test func aSlowWorkerOnAKeptAliveConnectionGets504() throws {
        let gate = RelayConnectionTests.Gate()
        let answered = Mutex(0)
        let slow = try RecordingHTTPServer(keepsConnectionsAlive: true) { request in
            guard request.path == "/v1/completions" else { return (200, "{}") }
            // The first answers at once (its connection is kept), the next waits for the gate.
            if answered.withLock({ count in defer { count += 1 }; return count }) > 0 { gate.pass() }
            return (200, Self.completion)
        }
        defer { gate.openUp(); slow.stop() }
        let router = try RouterProcess(["--worker-urls", "http://127.0.0.1:\(slow.port)", "--health-check-interval", "3600",
                                        "--request-timeout", "0.3"])
        defer { router.stop() }
        try router.waitForHealthyWorkers(1)
        let connection = try KeptAliveConnection(port: router.port)
        #expect(try Self.post(connection, id: "quick").status == 200)
        let late = try Self.post(connection, id: "late")
        #expect(late.status == 504)
        #expect(late.headers["x-request-id"] == "late")
        #expect(late.text.contains(#""code":"request_timeout""#))
        gate.openUp()
        // The connection serves the next request after the 504.
        #expect(try Self.post(connection, id: "after").status == 200)
    }

    @Test func aClientThatLeavesClosesTheWorkersRequestAndFreesItsSlot() throws {
        let gate = RelayConnectionTests.Gate()
        let answered = Mutex(0)
        let worker = try RecordingHTTPServer(keepsConnectionsAlive: true) { request in
            guard request.path == "/v1/completions" else { return (200, "{}") }
            // Only the second request is held.
            if answered.withLock({ count in defer { count += 1 }; return count }) == 1 { gate.pass() }
            return (200, Self.completion)
        }
        defer { gate.openUp(); worker.stop() }
        let router = try RouterProcess(["--worker-urls", "http://127.0.0.1:\(worker.port)", "--health-check-interval", "3600",
                                        "--max-concurrent-requests", "1", "--queue-size", "0"])
        defer { router.stop() }
        try router.waitForHealthyWorkers(1)
        var leaving: KeptAliveConnection? = try KeptAliveConnection(port: router.port)
        #expect(try Self.post(leaving!, id: "first").status == 200)
        try leaving!.send(KeptAliveConnection.request("POST", "/v1/completions", headers: ["X-Request-Id": "leaver"],
                                                      body: RelayConnectionTests.body(0)))
        try router.waitUntil("the worker has the second request") { Self.ids(worker) == ["first", "leaver"] }
        leaving!.resetOnClose()
        leaving = nil
        // The request ends (counted) although the worker never answered it, and the only slot is free.
        try router.waitUntil("the left request is finished") { try router.metric("tandem_router_requests_total") == 2 }
        let after = try KeptAliveConnection(port: router.port)
        #expect(try Self.post(after, id: "after").status == 200)
        #expect(Self.ids(worker) == ["first", "leaver", "after"])
    }
}
