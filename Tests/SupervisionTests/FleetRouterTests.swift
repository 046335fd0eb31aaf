import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport

/// The supervisor takes a rank out of the router (`POST /deregister`) before it restarts,
/// kills or stops it; here against a recording HTTP listener standing in for the router, over
/// real tandem-test-worker ranks (the real router is in the fleet's end-to-end tests).
@Suite(.serialized) struct FleetRouterTests {
    /// A deregistration as the router received it, with the pids of the fleet alive then.
    struct Deregistration: Sendable {
        var url: String?
        var authorization: String?
        var alive: Set<Int>
    }

    /// What the stand-in router saw; the fleet's tag is set once the fleet exists.
    final class Seen: Sendable {
        let tag = Mutex<String?>(nil)
        let deregistrations = Mutex<[Deregistration]>([])
    }

    final class Router: Sendable {
        let seen = Seen()
        let server: RecordingHTTPServer

        init() throws {
            let seen = seen
            server = try RecordingHTTPServer { request in
                if request.path == "/deregister" {
                    let alive = Set(seen.tag.withLock { $0 }.map { fleetProcesses(tag: $0) } ?? [])
                    let deregistration = Deregistration(url: request.json?["url"] as? String,
                                                        authorization: request.headers["authorization"], alive: alive)
                    seen.deregistrations.withLock { $0.append(deregistration) }
                }
                return (200, #"{"status":"deregistered"}"#)
            }
        }

        var url: String { "http://127.0.0.1:\(server.port)" }
        var received: [Deregistration] { seen.deregistrations.withLock { $0 } }
    }

    func fleet(_ router: Router, ranks: Int = 2) throws -> Fleet {
        let fleet = try Fleet(arguments: ["--num-servers", "\(ranks)"] + FleetTests.quick
                              + ["--router", router.url, "--register-token", "s3cret"])
        router.seen.tag.withLock { $0 = fleet.tag }
        return fleet
    }

    @Test func aRankThatDiedIsTakenOutOfTheRouterBeforeItsRestart() throws {
        let router = try Router()
        let fleet = try fleet(router)
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 2), "\(fleet.output)")
        let pid0 = try #require(fleet.pid(ofRank: 0))
        let pid1 = try #require(fleet.pid(ofRank: 1))
        let port1 = try #require(fleet.apiPort(ofRank: 1))
        // The ranks are told the router; the token travels in their environment, not in argv.
        let commandLine = try #require(FileManager.default.contents(atPath: "/proc/\(pid1)/cmdline"))
            .split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        #expect(commandLine.contains(router.url) && !commandLine.contains("s3cret"))
        let environment = try #require(FileManager.default.contents(atPath: "/proc/\(pid1)/environ"))
        #expect(environment.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "TANDEM_REGISTER_TOKEN=s3cret" })

        kill(pid_t(pid1), SIGKILL)
        let restarted = waitUntil {
            guard let pid = fleet.pid(ofRank: 1) else { return false }
            return pid != pid1 && fleet.state(1) == "ready"
        }
        #expect(restarted, "\(fleet.output)")
        let received = router.received
        #expect(received.count == 1)
        #expect(received.first?.url == "http://127.0.0.1:\(port1)")
        #expect(received.first?.authorization == "Bearer s3cret")
        // When the router heard of it, no new rank 1 was running yet.
        #expect(received.first?.alive == [fleet.pid, pid0], "\(received)")
        #expect(fleet.pid(ofRank: 0) == pid0)
    }

    @Test func aHungRankIsTakenOutOfTheRouterBeforeItIsKilled() throws {
        let router = try Router()
        let fleet = try fleet(router)
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 2), "\(fleet.output)")
        let pid1 = try #require(fleet.pid(ofRank: 1))
        let port1 = try #require(fleet.apiPort(ofRank: 1))
        kill(pid_t(pid1), SIGSTOP)
        let restarted = waitUntil {
            guard let pid = fleet.pid(ofRank: 1) else { return false }
            return pid != pid1 && fleet.state(1) == "ready"
        }
        #expect(restarted, "\(fleet.output)")
        let received = router.received
        #expect(received.count == 1, "\(received)")
        #expect(received.first?.url == "http://127.0.0.1:\(port1)")
        #expect(received.first?.alive.contains(pid1) == true, "the hung rank was killed before it left the router")
        #expect((fleet.rank(1)?["lastExit"] as? String)?.hasPrefix("signal 9 (SIGKILL) (killed by the supervisor: 3 failed health checks") == true)
    }

    @Test func stoppingTheFleetTakesEveryRankOutOfTheRouterFirst() throws {
        let router = try Router()
        let fleet = try fleet(router)
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 2), "\(fleet.output)")
        let pids = Set([try #require(fleet.pid(ofRank: 0)), try #require(fleet.pid(ofRank: 1))])
        let ports = Set([try #require(fleet.apiPort(ofRank: 0)), try #require(fleet.apiPort(ofRank: 1))])
        kill(pid_t(fleet.pid), SIGTERM)
        #expect(fleet.waitForExit() == 0, "\(fleet.output)")
        let received = router.received
        #expect(Set(received.compactMap(\.url)) == Set(ports.map { "http://127.0.0.1:\($0)" }))
        #expect(received.count == 2)
        for deregistration in received {
            #expect(pids.isSubset(of: deregistration.alive), "a rank was stopped before it left the router")
        }
    }

    @Test func aRouterThatIsDownDoesNotHoldUpARestart() throws {
        let unused = try freeLoopbackPort()
        let fleet = try Fleet(arguments: ["--num-servers", "1"] + FleetTests.quick + ["--router", "127.0.0.1:\(unused)"])
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 1), "\(fleet.output)")
        let pid = try #require(fleet.pid(ofRank: 0))
        kill(pid_t(pid), SIGKILL)
        #expect(waitUntil { fleet.pid(ofRank: 0).map { $0 != pid } == true && fleet.state(0) == "ready" }, "\(fleet.output)")
        #expect(fleet.output.contains("rank 0: could not take http://127.0.0.1:\(fleet.apiPort(ofRank: 0) ?? 0) out of the router http://127.0.0.1:\(unused): Couldn't connect to server"), "\(fleet.output)")
    }
}
