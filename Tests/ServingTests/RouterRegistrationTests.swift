import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport

/// api-server's `--router` registration, against a recording HTTP listener standing in for
/// the router (unit level: the real router's side is tested with the router).
@Suite(.serialized) struct RouterRegistrationTests {
    /// CPUs a process may run on, as taskset(1) reports them ("pid 7's current affinity list: 0-1,3").
    static func allowedCPUs(of pid: Int32) throws -> [String] {
        let output = try runProcess("/usr/bin/taskset", ["-pc", "\(pid)"]).stdout
        let list = try #require(output.split(separator: ":").last).trimmingCharacters(in: .whitespacesAndNewlines)
        return list.split(separator: ",").flatMap { part in
            let bounds = part.split(separator: "-").compactMap { Int($0) }
            return (bounds[0]...(bounds.last ?? bounds[0])).map(String.init)
        }
    }

    @Test func registersOnceReadyThenBeatsAndDeregistersWhenDraining() throws {
        let apiPort = try freeLoopbackPort()
        let healthWhenRegistered = Mutex<[Int]>([])
        let router = try RecordingHTTPServer { request in
            if request.path == "/register" {
                let status = httpGet(port: apiPort, path: "/health")?.status ?? 0
                healthWhenRegistered.withLock { $0.append(status) }
            }
            return (200, #"{"status":"registered"}"#)
        }
        let queuePort = try freeLoopbackPort()
        let server = try APIServerProcess([
            "--router", "127.0.0.1:\(router.port)", "--register-interval", "0.2", "--register-token", "s3cret",
            "--served-model-name", "tiny", "--engine-worker-queue-port", "\(queuePort)", "--local-data-parallel-id", "3",
            "--max-num-seqs", "2",
        ], port: apiPort)
        try server.waitUntil("two registrations") { router.requests(to: "/register").count >= 2 }

        let registration = try #require(router.requests(to: "/register").first)
        #expect(registration.method == "POST")
        #expect(registration.headers["authorization"] == "Bearer s3cret")
        let json = try #require(registration.json)
        #expect(json["role"] as? String == "mixed")
        #expect(json["host"] as? String == "127.0.0.1")
        #expect(json["port"] as? Int == apiPort)
        #expect(json["engine_worker_queue_port"] as? Int == queuePort)
        #expect(json["model"] as? String == "tiny")
        #expect(json["rank"] as? Int == 3)
        #expect(json["transfer_protocol"] as? [String] == ["ipc", "tcp"])
        #expect(json["device_ids"] as? [String] == (try Self.allowedCPUs(of: server.process.processIdentifier)))
        // Registered only once the engine serves: the router's health check must pass.
        #expect(healthWhenRegistered.withLock { $0 }.allSatisfy { $0 == 200 })
        #expect(router.requests(to: "/deregister").isEmpty)

        #expect(server.stop() == 0)
        let requests = router.requests
        let deregistrations = requests.filter { $0.path == "/deregister" }
        #expect(deregistrations.count == 1)
        #expect(deregistrations.first?.json as? [String: String] == ["url": "http://127.0.0.1:\(apiPort)"])
        #expect(deregistrations.first?.headers["authorization"] == "Bearer s3cret")
        #expect(requests.last?.path == "/deregister", "no heartbeat after the deregistration: \(requests.map(\.path))")
    }

    @Test func aRouterThatIsDownOrRefusesIsRetriedWhileTheServerKeepsServing() throws {
        let routerPort = try freeLoopbackPort()
        let server = try APIServerProcess(["--router", "http://127.0.0.1:\(routerPort)/", "--register-interval", "0.2",
                                           "--max-num-seqs", "2"])
        // Nothing listens on the router's port: logged, and the server serves.
        try server.waitUntil("the failed registration logged") {
            server.log.contains("router http://127.0.0.1:\(routerPort): registration of http://127.0.0.1:\(server.port) failed:")
        }
        _ = try APIServerTests.complete(server.client, "The capital of France is", maxTokens: 2)

        // The router comes up refusing twice (wrong token, then busy), then accepts.
        let answers = Mutex([(401, #"{"error":"invalid register token"}"#), (503, #"{"error":"worker health check failed"}"#)])
        let router = try RecordingHTTPServer(port: routerPort) { _ in
            answers.withLock { $0.isEmpty ? (200, #"{"status":"registered"}"#) : $0.removeFirst() }
        }
        try server.waitUntil("a registration accepted after two refusals") { router.requests(to: "/register").count >= 3 }
        try server.waitUntil("the acceptance logged") {
            server.log.contains("registration of http://127.0.0.1:\(server.port) (mixed) accepted")
        }
        let log = server.log
        #expect(log.contains(#"failed: HTTP 401: {"error":"invalid register token"}"#), "\(log)")
        #expect(log.contains(#"failed: HTTP 503: {"error":"worker health check failed"}"#), "\(log)")
        #expect(router.requests(to: "/register").first?.headers["authorization"] == nil)
        _ = try APIServerTests.complete(server.client, "The capital of France is", maxTokens: 2)
        try server.waitUntilIdle()
        #expect(server.stop() == 0)
    }

    @Test func badRegistrationFlagsExit78WithTheReason() throws {
        let cases: [([String], String)] = [
            (["--router", "localhost"], "--router 'localhost' is not HOST:PORT or an http:// URL such as http://127.0.0.1:8109"),
            (["--router", "127.0.0.1:8109", "--register-interval", "0"], "--register-interval must be a number of seconds > 0, got 0.0"),
        ]
        for (arguments, message) in cases {
            let result = try runProcess(try APIServerProcess.binary, ["--port", "\(try freeLoopbackPort())"] + arguments)
            #expect(result.status == 78)
            #expect(result.stderr.contains(message), "\(result.stderr)")
        }
    }
}
