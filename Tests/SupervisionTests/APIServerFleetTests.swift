import Foundation
import Glibc
import ModelStore
import Synchronization
import Testing
import TestSupport

/// The supervisor over two real api-server ranks on the default model (the README's main job).
@Suite(.serialized) struct APIServerFleetTests {
    @Test func aKilledRankAloneRestartsWhileTheOtherKeepsGenerating() throws {
        _ = try requireModel(at: DefaultModel.path())
        let fleet = try Fleet(arguments: ["--num-servers", "2"] + FleetTests.quick + ["--startup-grace", "120", "--args",
                                          "--threads", "1", "--max-num-seqs", "4"],
                              workerBinary: try BuiltProducts.path("api-server"))
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 2), "\(fleet.output)")
        let port0 = try #require(fleet.apiPort(ofRank: 0))
        let port1 = try #require(fleet.apiPort(ofRank: 1))
        let pid0 = try #require(fleet.pid(ofRank: 0))
        let pid1 = try #require(fleet.pid(ofRank: 1))
        #expect(httpGet(port: port1, path: "/health_generate", timeout: .seconds(60))?.status == 200)

        // Rank 0 generates throughout (GET /health_generate runs a real one-token generation).
        let answered = Mutex(0)
        let failed = Mutex(0)
        let loading = Mutex(true)
        let load = Thread {
            while loading.withLock({ $0 }) {
                if httpGet(port: port0, path: "/health_generate", timeout: .seconds(30))?.status == 200 {
                    answered.withLock { $0 += 1 }
                } else {
                    failed.withLock { $0 += 1 }
                }
            }
        }
        load.start()
        kill(pid_t(pid1), SIGKILL)
        let restarted = waitUntil {
            guard let rank = fleet.rank(1), let pid = rank["pid"] as? Int else { return false }
            return pid != pid1 && rank["state"] as? String == "ready"
        }
        let answeredDuringRestart = answered.withLock { $0 }
        loading.withLock { $0 = false }
        #expect(restarted, "\(fleet.output)")
        #expect(fleet.pid(ofRank: 0) == pid0)
        #expect(fleet.rank(0)?["restarts"] as? Int == 0)
        #expect(fleet.rank(1)?["restarts"] as? Int == 1)
        #expect(failed.withLock { $0 } == 0)
        #expect(answeredDuringRestart > 0)
        #expect(httpGet(port: port1, path: "/health_generate", timeout: .seconds(60))?.status == 200)
        #expect(fleet.health()?.status == 200)
    }
}
