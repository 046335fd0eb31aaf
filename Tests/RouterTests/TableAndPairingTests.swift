import Foundation
import NIOCore
import PDProtocol
import Routing
import Testing

/// The worker table, cluster files and static worker URLs, PD pairing and the first-token watch.
@Suite struct TableAndPairingTests {
    static func registration(_ host: String, _ port: Int, _ role: SplitwiseRole, _ protocols: [TransferProtocol] = []) -> WorkerRegistration {
        WorkerRegistration(role: role, endpoint: PeerEndpoint(host: host, port: port, engineWorkerQueuePort: port + 1),
                           model: "m", transferProtocols: protocols)
    }

    @Test func onlyHealthyWorkersWithAClosedBreakerAreCandidates() {
        let t0 = ContinuousClock.now
        let table = WorkerTable(failureThreshold: 1, successThreshold: 1,
                                breaker: .init(failureThreshold: 1, successThreshold: 1, openDuration: .seconds(30)))
        #expect(table.upsert(Self.registration("127.0.0.1", 9000, .mixed), source: .registered, admitted: true) == .registered)
        #expect(table.upsert(Self.registration("127.0.0.1", 9000, .mixed), source: .registered, admitted: false) == .refreshed)
        table.upsert(Self.registration("127.0.0.1", 9010, .mixed), source: .configured, admitted: false)
        table.upsert(Self.registration("127.0.0.1", 9020, .prefill), source: .configured, admitted: true)
        #expect(table.candidates(role: .mixed, at: t0).map(\.url) == ["http://127.0.0.1:9000"])
        #expect(table.recordHealth("http://127.0.0.1:9010", healthy: true, load: nil) == .joined("http://127.0.0.1:9010"))
        #expect(table.candidates(role: .mixed, at: t0).map(\.url) == ["http://127.0.0.1:9000", "http://127.0.0.1:9010"])
        #expect(table.candidates(role: .prefill, at: t0).count == 1)

        #expect(table.begin("http://127.0.0.1:9000", at: t0))
        #expect(table.candidates(role: .mixed, at: t0).first?.inFlight == 1)
        table.end("http://127.0.0.1:9000", success: false, at: t0)
        #expect(table.candidates(role: .mixed, at: t0).map(\.url) == ["http://127.0.0.1:9010"])
        #expect(table.statuses(at: t0).first?.circuitBreaker == "open")
        #expect(table.candidates(role: .mixed, at: t0 + .seconds(30)).count == 2)

        #expect(table.recordHealth("http://127.0.0.1:9010", healthy: false, load: nil) == .left("http://127.0.0.1:9010"))
        #expect(table.candidates(role: .mixed, at: t0).isEmpty)
        #expect(table.remove("http://127.0.0.1:9010"))
        #expect(!table.remove("http://127.0.0.1:9010"))
        #expect(table.registrations().map(\.url) == ["http://127.0.0.1:9000", "http://127.0.0.1:9020"])
    }

    @Test func ipcOnOneHostWhenBothOfferItElseTCP() {
        let p = Self.registration("127.0.0.1", 8001, .prefill, [.ipc, .tcp])
        #expect(PDPairing.transferProtocol(prefill: p, decode: Self.registration("localhost", 8002, .decode, [.ipc, .tcp])) == .ipc)
        #expect(PDPairing.transferProtocol(prefill: p, decode: Self.registration("127.0.0.1", 8002, .decode, [.tcp])) == .tcp)
        #expect(PDPairing.transferProtocol(prefill: p, decode: Self.registration("10.0.0.2", 8002, .decode, [.ipc, .tcp])) == .tcp)
        #expect(PDPairing.transferProtocol(prefill: Self.registration("10.0.0.1", 8001, .prefill, [.ipc]),
                                           decode: Self.registration("10.0.0.2", 8002, .decode, [.ipc])) == nil)
        #expect(PDPairing.transferProtocol(prefill: Self.registration("10.0.0.1", 8001, .prefill),
                                           decode: Self.registration("10.0.0.2", 8002, .decode)) == .tcp)
    }

    @Test func theLegsCarryDisaggregateInfoAndPrefillIsNeverStreamed() throws {
        let p = Self.registration("127.0.0.1", 8001, .prefill, [.ipc, .tcp])
        let d = Self.registration("127.0.0.1", 8002, .decode, [.ipc, .tcp])
        let bodies = try PDPairing.legBodies(["prompt": "Hi", "stream": true, "stream_options": ["include_usage": true], "max_tokens": 4],
                                             prefill: p, decode: d, requestID: "router-1", transferProtocol: .ipc)
        let prefill = try #require(try JSONSerialization.jsonObject(with: bodies.prefill) as? [String: Any])
        let decode = try #require(try JSONSerialization.jsonObject(with: bodies.decode) as? [String: Any])
        #expect(prefill["stream"] as? Bool == false && prefill["stream_options"] == nil)
        #expect(decode["stream"] as? Bool == true && decode["stream_options"] != nil && decode["max_tokens"] as? Int == 4)
        let infoP = try JSONDecoder().decode(DisaggregateInfo.self, from: JSONSerialization.data(withJSONObject: prefill["disaggregate_info"]!))
        let infoD = try JSONDecoder().decode(DisaggregateInfo.self, from: JSONSerialization.data(withJSONObject: decode["disaggregate_info"]!))
        #expect(infoP == DisaggregateInfo(role: .prefill, requestID: "router-1", prefill: p.endpoint, decode: d.endpoint, transferProtocol: .ipc))
        #expect(infoD.role == .decode && infoD.requestID == "router-1" && infoD.prefill == p.endpoint && infoD.decode == d.endpoint)
    }

    @Test func aClusterFileListsEachRole() throws {
        let config = try ClusterConfig.parse(Data("""
            {"prefill": [{"host": "10.0.0.1", "port": 8001, "engine_worker_queue_port": 8011, "pd_comm_port": 8021,
                          "cache_queue_port": 8031, "device_ids": ["0", "1"], "transfer_protocol": ["ipc", "tcp"]}],
             "decode": [{"host": "10.0.0.2", "port": 8002, "model": "smollm2"}],
             "mixed": []}
            """.utf8), name: "cluster.json")
        #expect(config.workers.count == 2)
        #expect(config.workers[0] == WorkerRegistration(
            role: .prefill, endpoint: PeerEndpoint(host: "10.0.0.1", port: 8001, engineWorkerQueuePort: 8011, pdCommPort: 8021, cacheQueuePort: 8031),
            model: "", deviceIDs: ["0", "1"], transferProtocols: [.ipc, .tcp]))
        #expect(config.workers[1].role == .decode && config.workers[1].model == "smollm2" && config.workers[1].url == "http://10.0.0.2:8002")
    }

    @Test func badClusterFilesAreRefusedWithTheExactError() {
        func error(_ text: String) -> String {
            do {
                _ = try ClusterConfig.parse(Data(text.utf8), name: "c.json")
                return "parsed"
            } catch {
                return "\(error)"
            }
        }
        #expect(error("[1]") == "--cluster-config c.json: not a JSON object")
        #expect(error(#"{"prefil": []}"#) == "--cluster-config c.json: unknown key 'prefil' (expected prefill, decode, mixed)")
        #expect(error(#"{"decode": {"host": "a"}}"#) == "--cluster-config c.json: 'decode' must be a list of instances")
        #expect(error(#"{"decode": [{"host": "a"}]}"#) == "--cluster-config c.json: decode[0]: missing key 'port'")
    }

    @Test func staticWorkerURLsCarryTheirPorts() throws {
        let worker = try StaticWorker.parse(
            "http://10.0.0.1:8001?engine_worker_queue_port=8011&pd_comm_port=8021&cache_queue_port=8031&transfer_protocol=ipc,tcp",
            role: .prefill)
        #expect(worker.endpoint == PeerEndpoint(host: "10.0.0.1", port: 8001, engineWorkerQueuePort: 8011, pdCommPort: 8021, cacheQueuePort: 8031))
        #expect(worker.transferProtocols == [.ipc, .tcp] && worker.role == .prefill)
        func error(_ text: String) -> String {
            do { _ = try StaticWorker.parse(text, role: .mixed); return "parsed" } catch { return "\(error)" }
        }
        #expect(error("127.0.0.1:8000") == "'127.0.0.1:8000' is not a worker URL such as http://127.0.0.1:8000")
        #expect(error("http://a:1?pd_comm_port=x") == "'http://a:1?pd_comm_port=x': pd_comm_port must be a port number")
        #expect(error("http://a:1?transfer_protocol=shm") == "'http://a:1?transfer_protocol=shm': unknown transfer protocol 'shm' (ipc, tcp, rdma)")
        #expect(error("http://a:1?bootstrap_port=9") == "'http://a:1?bootstrap_port=9': unknown parameter 'bootstrap_port'")
    }

    @Test func theFirstTokenWatchIgnoresRoleChunksAndSeesTokens() {
        var chat = FirstTokenWatch()
        let added1 = chat.add(ByteBuffer(string: #"data: {"choices":[{"delta":{"role":"assistant","content":""},"index":0}]}"# + "\n\n"))
        #expect(!added1)
        let added2 = chat.add(ByteBuffer(string: #"data: {"choices":[{"delta":{"cont"#))
        #expect(!added2)
        let added3 = chat.add(ByteBuffer(string: #"ent":"Hel"},"index":0}]}"# + "\n\n"))
        #expect(added3)
        var completion = FirstTokenWatch()
        let added4 = completion.add(ByteBuffer(string: #"data: {"choices":[{"index":0,"text":" Paris"}]}"# + "\n\n"))
        #expect(added4)
        var failed = FirstTokenWatch()
        let added5 = failed.add(ByteBuffer(string: #"data: {"error":{"message":"engine failed"}}"# + "\n\n"))
        #expect(!added5)
        #expect(failed.sawError)
    }
}
