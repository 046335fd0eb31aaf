import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport

/// The real router in front of real mixed api-server processes on the default model.
@Suite(.serialized) struct RouterIntegrationTests {
    static let prompts = ["The capital of France is", "Once upon a time", "def fibonacci(n):", "Water boils at"]

    static func twoWorkers(_ arguments: [String] = []) throws -> (APIServerProcess, APIServerProcess) {
        (try APIServerProcess(["--threads", "1"] + arguments), try APIServerProcess(["--threads", "1"] + arguments))
    }

    static func url(_ worker: APIServerProcess) -> String { "http://127.0.0.1:\(worker.port)" }

    @Test func requestsThroughTheRouterEqualDirectOnes() throws {
        let (a, b) = try Self.twoWorkers()
        defer { a.stop(); b.stop() }
        let router = try RouterProcess(["--worker-urls", "\(Self.url(a)),\(Self.url(b))", "--policy", "round_robin"])
        defer { router.stop() }
        try router.waitForHealthyWorkers(2)
        #expect(try router.client.get("/readiness").status == 200)

        for prompt in Self.prompts {
            let direct = try Completions.run(a.client, prompt)
            #expect(try Completions.run(router.client, prompt) == direct, "\(prompt)")
            #expect(try Completions.run(router.client, prompt, stream: true) == direct, "\(prompt), streamed")
        }
        let chat = try Completions.run(a.client, "Say hello.", chat: true)
        #expect(try Completions.run(router.client, "Say hello.", chat: true) == chat)
        #expect(try Completions.run(router.client, "Say hello.", stream: true, chat: true) == chat)

        // Round robin used both workers; the request id is echoed; /v1/models is relayed.
        #expect(try a.metric("tandem:request_success_total") > Double(Self.prompts.count + 1))
        #expect(try b.metric("tandem:request_success_total") >= Double(Self.prompts.count + 1))
        let tagged = try router.client.post("/v1/completions", json: Completions.body("Hi", maxTokens: 2, stream: false),
                                            headers: ["X-Request-Id": "test-request-42"])
        #expect(tagged.headers["x-request-id"] == "test-request-42")
        // (Each worker's list carries its own start time: the model ids are compared.)
        func modelIDs(_ client: HTTPTestClient) throws -> [String] {
            ((try client.get("/v1/models").json()?["data"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
        }
        #expect(try modelIDs(router.client) == (try modelIDs(a.client)))
        #expect(try !modelIDs(router.client).isEmpty)
        let loads = [try a.load(), try b.load()]
        #expect(loads.allSatisfy { $0["kvBlocksTotal"]! > 0 })
        #expect(try router.metric("tandem_router_requests_total") >= Double(Self.prompts.count * 2 + 3))
        #expect(try router.metric("tandem_router_worker_healthy") == 2)
        try a.waitUntilIdle()
        try b.waitUntilIdle()
    }

    @Test func registrationNeedsTheTokenAndAHealthyWorker() throws {
        let worker = try APIServerProcess(["--threads", "1"])
        defer { worker.stop() }
        let router = try RouterProcess(["--register-token", "s3cret", "--health-check-timeout", "0.3"])
        defer { router.stop() }
        #expect(try router.client.get("/readiness").status == 503)
        let registration: [String: Any] = ["role": "mixed", "host": "127.0.0.1", "port": worker.port, "model": "smollm2",
                                           "transfer_protocol": ["ipc", "tcp"]]

        let unauthorized = #"{"error":{"code":"invalid_register_token","message":"Registration refused: send the router's --register-token as 'Authorization: Bearer <token>'.","param":null,"type":"invalid_request_error"}}"#
        let missing = try router.client.post("/register", json: registration)
        #expect(missing.status == 401 && missing.text == unauthorized)
        let wrong = try router.client.post("/register", json: registration, headers: ["Authorization": "Bearer guess"])
        #expect(wrong.status == 401 && wrong.text == unauthorized)
        let auth = ["Authorization": "Bearer s3cret"]

        let malformed = try router.client.post("/register", json: ["role": "mixed", "host": "127.0.0.1"], headers: auth)
        #expect(malformed.status == 400)
        #expect(malformed.text == #"{"error":{"code":null,"message":"We could not parse the JSON body of your registration: missing key 'model'","param":null,"type":"invalid_request_error"}}"#)
        let nobody = try freeLoopbackPort()
        let dead = try router.client.post("/register", json: ["role": "mixed", "host": "127.0.0.1", "port": nobody, "model": "m"], headers: auth)
        #expect(dead.status == 503)
        #expect(dead.text == #"{"error":{"code":"worker_unhealthy","message":"Worker http://127.0.0.1:\#(nobody) was not added: its /health did not answer 200 (connection refused).","param":null,"type":"service_unavailable"}}"#)

        let registered = try router.client.post("/register", json: registration, headers: auth)
        #expect(registered.status == 200 && registered.text == #"{"status":"registered"}"#)
        let refreshed = try router.client.post("/register", json: registration, headers: auth)
        #expect(refreshed.status == 200 && refreshed.text == #"{"status":"refreshed"}"#)
        let listed = try JSONSerialization.jsonObject(with: try router.client.get("/registered").body) as? [[String: Any]]
        #expect(listed?.count == 1 && listed?.first?["port"] as? Int == worker.port && listed?.first?["role"] as? String == "mixed")
        #expect(try Completions.run(router.client, "Hello", maxTokens: 4) == (try Completions.run(worker.client, "Hello", maxTokens: 4)))

        // A worker whose /health stops answering leaves the table, and comes back when it recovers.
        kill(worker.process.processIdentifier, SIGSTOP)
        try router.waitForHealthyWorkers(0)
        let none = try router.client.post("/v1/completions", json: Completions.body("Hello", maxTokens: 4, stream: false))
        #expect(none.status == 503)
        #expect(none.text == #"{"error":{"code":"no_worker","message":"No healthy mixed worker is available.","param":null,"type":"service_unavailable"}}"#)
        kill(worker.process.processIdentifier, SIGCONT)
        try router.waitForHealthyWorkers(1)
        #expect(try Completions.run(router.client, "Hello", maxTokens: 4).finishReason == "length")

        // Removal: by DELETE with the URL percent-encoded, then by /deregister.
        let encoded = Self.url(worker).addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        #expect(try router.client.request("DELETE", "/workers/\(encoded)", body: nil).status == 401)
        #expect(try router.client.request("DELETE", "/workers/\(encoded)", headers: auth, body: nil).text == #"{"status":"deregistered"}"#)
        #expect(try router.client.get("/readiness").status == 503)
        _ = try router.client.post("/register", json: registration, headers: auth)
        let gone = try router.client.post("/deregister", json: ["url": Self.url(worker)], headers: auth)
        #expect(gone.status == 200)
        let unknown = try router.client.post("/deregister", json: ["url": Self.url(worker)], headers: auth)
        #expect(unknown.status == 404)
        #expect(unknown.text == #"{"error":{"code":"not_found","message":"No worker \#(Self.url(worker)) is in the router's table.","param":null,"type":"invalid_request_error"}}"#)
        try worker.waitUntilIdle()
    }

    @Test func aFullRouterRefusesWith429AndAClientThatLeavesAbortsItsRequest() throws {
        let worker = try APIServerProcess(["--threads", "1"])
        defer { worker.stop() }
        let router = try RouterProcess(["--worker-urls", Self.url(worker), "--max-concurrent-requests", "1", "--queue-size", "0"])
        defer { router.stop() }
        try router.waitForHealthyWorkers(1)
        let long = try JSONSerialization.data(withJSONObject: [
            "prompt": "Write a long story:", "max_tokens": 2000, "temperature": 0, "ignore_eos": true, "stream": true,
        ] as [String: Any])
        let gate = Mutex(false)
        // One stream holds the only slot (its client hangs up after the check below).
        let released = Mutex(false)
        let client = router.client
        let streaming = Thread {
            _ = try? client.request("POST", "/v1/completions", body: long) { events in
                if events >= 2 { gate.withLock { $0 = true } }
                return released.withLock { $0 }
            }
        }
        streaming.start()
        try router.waitUntil("the stream started") { gate.withLock { $0 } }
        let refused = try router.client.post("/v1/completions", json: Completions.body("Hi", maxTokens: 2, stream: false))
        #expect(refused.status == 429)
        #expect(refused.text == #"{"error":{"code":"queue_full","message":"The router is at --max-concurrent-requests (1 running) and its wait queue is full (0 waiting): retry later.","param":null,"type":"rate_limit_error"}}"#)
        released.withLock { $0 = true }
        // The client left: the router closes the worker's request and the worker frees its blocks.
        try worker.waitUntilIdle(seconds: 60)
        try router.waitUntil("the slot is free again") { try router.metric("tandem_router_requests_running") == 0 }
        #expect(try Completions.run(router.client, "Hi", maxTokens: 2).finishReason == "length")
    }

    @Test func aWorkerThatStopsAnsweringTimesOutWith504() throws {
        let worker = try APIServerProcess(["--threads", "1"])
        defer { worker.stop() }
        let router = try RouterProcess(["--worker-urls", Self.url(worker), "--request-timeout", "0.5", "--health-check-interval", "3600"])
        defer { router.stop() }
        try router.waitForHealthyWorkers(1)
        kill(worker.process.processIdentifier, SIGSTOP)
        let late = try router.client.post("/v1/completions", json: Completions.body("Hello", maxTokens: 4, stream: false))
        kill(worker.process.processIdentifier, SIGCONT)
        #expect(late.status == 504)
        #expect(late.text == #"{"error":{"code":"request_timeout","message":"The worker did not finish the request within 0.5 s.","param":null,"type":"timeout_error"}}"#)
        try worker.waitUntilIdle(seconds: 60)
        #expect(try Completions.run(router.client, "Hello", maxTokens: 4).finishReason == "length")
    }

    @Test func aKilledWorkerFailsNoRequestThatHadNoTokenYet() throws {
        let (a, b) = try Self.twoWorkers()
        defer { a.stop(); b.stop() }
        // Slow health checks: the router learns of the death only from the requests that fail.
        let router = try RouterProcess(["--worker-urls", "\(Self.url(a)),\(Self.url(b))", "--health-check-interval", "3600",
                                        "--retry-initial-backoff-ms", "1"])
        defer { router.stop() }
        try router.waitForHealthyWorkers(2)

        // Streams under way on both workers when b dies.
        let long = Completions.body("Tell me a story:", maxTokens: 200, stream: true)
        let started = Mutex<Set<Int>>([])
        let body = try JSONSerialization.data(withJSONObject: long)
        let client = router.client, workerA = a.client
        let inFlight = Thread.detachNewThreadWithResult {
            try concurrently(4) { index in
                try client.request("POST", "/v1/completions", body: body) { events in
                    if events >= 2 { started.withLock { _ = $0.insert(index) } }
                    return false
                }
            }
        }
        try router.waitUntil("4 streams produced tokens") { started.withLock { $0.count } == 4 }
        kill(b.process.processIdentifier, SIGKILL)
        _ = b.waitForExit()

        // Requests sent now: those given to b fail before any token and are retried on a.
        let after = try concurrently(12) { index in
            try Completions.run(client, Self.prompts[index % Self.prompts.count], maxTokens: 4, stream: index % 2 == 0)
        }
        let expected = try Self.prompts.map { try Completions.run(workerA, $0, maxTokens: 4) }
        for (index, result) in after.enumerated() {
            #expect(result == expected[index % Self.prompts.count], "request \(index)")
        }
        #expect(try router.metric("tandem_router_retries_total") > 0)

        // The streams that were on b end with an error event; those on a finish. None hangs.
        let streams = try inFlight.value()
        let broken = streams.filter { $0.text.contains("upstream_failed") }
        #expect(broken.count == 2, "\(streams.map(\.text))")
        #expect(streams.allSatisfy { $0.events.last == "[DONE]" })
        try a.waitUntilIdle(seconds: 60)
    }

    @Test func twoHundredConcurrentStreamsAllComplete() throws {
        let (a, b) = try Self.twoWorkers(["--max-num-seqs", "32"])
        defer { a.stop(); b.stop() }
        let router = try RouterProcess(["--worker-urls", "\(Self.url(a)),\(Self.url(b))", "--policy", "least_requests"])
        defer { router.stop() }
        try router.waitForHealthyWorkers(2)
        let alone = try Self.prompts.map { try Completions.run(a.client, $0, maxTokens: 6) }
        let client = router.client
        let together = try concurrently(200) { index in
            try Completions.run(client, Self.prompts[index % Self.prompts.count], maxTokens: 6, stream: true)
        }
        for (index, result) in together.enumerated() {
            #expect(result == alone[index % Self.prompts.count], "request \(index)")
        }
        try a.waitUntilIdle()
        try b.waitUntilIdle()
        #expect(try router.metric("tandem_router_requests_total") >= 200)
    }
}

extension Thread {
    /// Runs `body` on its own thread; `value()` waits for it.
    static func detachNewThreadWithResult<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> ThreadResult<T> {
        let result = ThreadResult<T>()
        Thread.detachNewThread { result.set(Result { try body() }) }
        return result
    }
}

final class ThreadResult<T: Sendable>: Sendable {
    private let slot = Mutex<Result<T, any Error>?>(nil)

    func set(_ result: Result<T, any Error>) { slot.withLock { $0 = result } }

    func value() throws -> T {
        TestSupport.waitUntil(deadline: .now + .seconds(600)) { slot.withLock { $0 != nil } }
        guard let result = slot.withLock({ $0 }) else { throw HTTPTestError(description: "the thread did not finish") }
        return try result.get()
    }
}
