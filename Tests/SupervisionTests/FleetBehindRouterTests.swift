import Foundation
import Glibc
import ModelStore
import Synchronization
import Testing
import TestSupport

/// Two real api-server ranks under multi-api-server, registered with the real router, and a
/// rank killed under load (issue 8, item 10).
@Suite(.serialized) struct FleetBehindRouterTests {
    /// How one streamed request through the router ended.
    enum Outcome { case completed, failedAfterAToken, failedBeforeAnyToken(String) }

    static func streamedCompletion(port: Int) -> Outcome {
        let body = Data(#"{"model": "SmolLM2-135M-Instruct", "prompt": "The capital of France is", "max_tokens": 8, "temperature": 0, "stream": true}"#.utf8)
        guard let reply = httpPost(port: port, path: "/v1/completions", body: body, timeout: .seconds(120)) else {
            return .failedBeforeAnyToken("no answer")
        }
        // The events, whatever the framing (the router answers chunked even to HTTP/1.0).
        if reply.status == 200 && reply.body.contains("data: [DONE]") { return .completed }
        if reply.status == 200 && reply.body.contains(#""text":"#) { return .failedAfterAToken }
        return .failedBeforeAnyToken("HTTP \(reply.status): \(reply.body.prefix(300))")
    }

    /// The URLs the router lists in `GET /registered`.
    static func registered(routerPort: Int) -> Set<String> {
        guard let reply = httpGet(port: routerPort, path: "/registered"), reply.status == 200,
              let list = (try? JSONSerialization.jsonObject(with: Data(reply.body.utf8))) as? [[String: Any]] else { return [] }
        return Set(list.compactMap { entry in
            guard let host = entry["host"] as? String, let port = entry["port"] as? Int else { return nil }
            return "http://\(host):\(port)"
        })
    }

    /// The real router on loopback, its output in a temporary file.
    final class RouterUnderTest {
        let process = Process()
        let logPath = NSTemporaryDirectory() + "tandem-router-\(UUID().uuidString.prefix(8)).log"

        init(port: Int) throws {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: try BuiltProducts.path("router"))
            process.arguments = ["--host", "127.0.0.1", "--port", "\(port)", "--policy", "round_robin",
                                 "--health-check-interval", "0.5"]
            process.standardOutput = FileHandle(forWritingAtPath: logPath)
            process.standardError = FileHandle(forWritingAtPath: logPath)
            try process.run()
        }

        var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
            try? FileManager.default.removeItem(atPath: logPath)
        }
    }

    /// Every KV block is free and nothing runs on the rank serving `port`.
    static func allBlocksFree(port: Int) -> Bool {
        waitUntil {
            guard let reply = httpGet(port: port, path: "/load"),
                  let load = (try? JSONSerialization.jsonObject(with: Data(reply.body.utf8))) as? [String: Any] else { return false }
            return load["kvBlocksFree"] as? Int == load["kvBlocksTotal"] as? Int && load["runningRequests"] as? Int == 0
        }
    }

    /// Two api-server ranks under multi-api-server that register with the router on `routerPort`.
    static func twoRanks(registeringWith routerPort: Int) throws -> Fleet {
        try Fleet(arguments: ["--num-servers", "2"] + FleetTests.quick + [
            "--startup-grace", "120", "--router", "127.0.0.1:\(routerPort)",
            "--args", "--threads", "1", "--max-num-seqs", "4", "--register-interval", "0.2",
            "--served-model-name", "SmolLM2-135M-Instruct",
        ], workerBinary: try BuiltProducts.path("api-server"))
    }

    @Test func aRestartedRouterRebuildsItsTableFromTheHeartbeats() throws {
        _ = try requireModel(at: DefaultModel.path())
        let routerPort = try freeLoopbackPort()
        var router = try RouterUnderTest(port: routerPort)
        defer { router.stop() }
        let fleet = try Self.twoRanks(registeringWith: routerPort)
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 2), "\(fleet.output)")
        let ports = [try #require(fleet.apiPort(ofRank: 0)), try #require(fleet.apiPort(ofRank: 1))]
        let urls = Set(ports.map { "http://127.0.0.1:\($0)" })
        #expect(waitUntil { Self.registered(routerPort: routerPort) == urls }, "\(router.output)")

        // The router dies with its table; a new one on the same port starts empty and learns
        // both ranks again from their heartbeats, with no restart of either.
        router.stop()
        router = try RouterUnderTest(port: routerPort)
        #expect(waitUntil { Self.registered(routerPort: routerPort) == urls }, "\(router.output)")
        for _ in 0..<4 {
            guard case .completed = Self.streamedCompletion(port: routerPort) else {
                Issue.record("a request through the restarted router failed:\n\(router.output)")
                break
            }
        }
        #expect(fleet.rank(0)?["restarts"] as? Int == 0)
        #expect(fleet.rank(1)?["restarts"] as? Int == 0)
        for port in ports { #expect(Self.allBlocksFree(port: port), "rank on port \(port) did not free its KV blocks") }
    }

    @Test func killingARankUnderLoadFailsNoRequestThatHadNoTokenAndItRegistersAgain() throws {
        _ = try requireModel(at: DefaultModel.path())
        let routerPort = try freeLoopbackPort()
        let router = try RouterUnderTest(port: routerPort)
        defer { router.stop() }
        var routerOutput: String { router.output }

        let fleet = try Self.twoRanks(registeringWith: routerPort)
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 2), "\(fleet.output)")
        let ports = [try #require(fleet.apiPort(ofRank: 0)), try #require(fleet.apiPort(ofRank: 1))]
        let urls = Set(ports.map { "http://127.0.0.1:\($0)" })
        #expect(waitUntil { Self.registered(routerPort: routerPort) == urls }, "\(routerOutput)")
        let pid1 = try #require(fleet.pid(ofRank: 1))

        // Three clients stream (a stream cut after its first token may fail: the rank died under it) through the router throughout the kill and the restart.
        let completed = Mutex(0), failedAfterAToken = Mutex(0), failedBeforeAnyToken = Mutex<[String]>([])
        let loading = Mutex(true)
        let clients = DispatchGroup()
        for _ in 0..<3 {
            clients.enter()
            Thread.detachNewThread {
                while loading.withLock({ $0 }) {
                    switch Self.streamedCompletion(port: routerPort) {
                    case .completed: completed.withLock { $0 += 1 }
                    case .failedAfterAToken: failedAfterAToken.withLock { $0 += 1 }
                    case .failedBeforeAnyToken(let why): failedBeforeAnyToken.withLock { $0.append(why) }
                    }
                }
                clients.leave()
            }
        }
        #expect(waitUntil { completed.withLock { $0 } >= 3 }, "\(routerOutput)")
        kill(pid_t(pid1), SIGKILL)
        let back = waitUntil {
            guard let pid = fleet.pid(ofRank: 1), pid != pid1, fleet.state(1) == "ready" else { return false }
            return Self.registered(routerPort: routerPort) == urls
        }
        let completedAtReturn = completed.withLock { $0 }
        #expect(waitUntil { completed.withLock { $0 } >= completedAtReturn + 3 })
        loading.withLock { $0 = false }
        clients.wait()

        #expect(back, "rank 1 did not come back into the router:\n\(fleet.output)\n\(routerOutput)")
        #expect(failedBeforeAnyToken.withLock { $0 } == [], "\(routerOutput)")
        #expect(fleet.output.contains("rank 1: taken out of the router http://127.0.0.1:\(routerPort) (http://127.0.0.1:\(ports[1]))"))
        #expect(fleet.rank(0)?["restarts"] as? Int == 0)
        #expect(fleet.rank(1)?["restarts"] as? Int == 1)
        // Every KV block is free again on both ranks.
        for port in ports { #expect(Self.allBlocksFree(port: port), "rank on port \(port) did not free its KV blocks") }
    }
}
