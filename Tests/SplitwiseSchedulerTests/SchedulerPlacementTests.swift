import PDProtocol
import SplitwiseScheduler
import Testing

/// FastDeploy's placement rules on a cluster view (no Redis, no processes).
struct SchedulerPlacementTests {
    static func node(_ id: String, _ role: SplitwiseRole, load: Int, host: String = "10.0.0.1", protocols: [TransferProtocol] = [.ipc, .tcp]) -> ClusterNode {
        ClusterNode(id: id, info: SchedulerNodeInfo(ts: 0, role: role, load: load, host: host,
                                                    disaggregated: .init(endpoint: PeerEndpoint(host: host, port: 8000), transferProtocols: protocols)))
    }

    /// A fixed-sequence generator: placements are reproducible.
    struct Counter: RandomNumberGenerator {
        var state: UInt64 = 1
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state
        }
    }

    @Test func prefillByLeastPromptTokensAndDecodeByFewestRequests() {
        var random = Counter()
        // Prefill loads 0 and 1000 are further apart than the blur (100 for a short prompt);
        // decode loads 0 and 3 are further apart than its blur (2 nodes: 2).
        let nodes = [Self.node("p-busy", .prefill, load: 1000), Self.node("p-idle", .prefill, load: 0),
                     Self.node("d-busy", .decode, load: 3), Self.node("d-idle", .decode, load: 0)]
        for _ in 0..<50 {
            let placement = PlacementPolicy.place(promptTokens: 20, nodes: nodes, using: &random)
            guard case .disaggregated(let prefill, let decode, let transfer) = placement else {
                Issue.record("not disaggregated: \(String(describing: placement))"); return
            }
            #expect(prefill.id == "p-idle")
            #expect(decode.id == "d-idle")
            #expect(transfer == .ipc)
        }
    }

    @Test func aRandomChoiceAmongTheNearLeastLoaded() {
        var random = Counter()
        // 0 and 50 are within the blur of a short prompt (100): both are chosen over many tries.
        let nodes = [Self.node("a", .mixed, load: 0), Self.node("b", .mixed, load: 50), Self.node("c", .mixed, load: 400)]
        var chosen: Set<String> = []
        for _ in 0..<100 {
            if case .mixed(let node) = PlacementPolicy.place(promptTokens: 10, nodes: nodes, using: &random) { chosen.insert(node.id) }
        }
        #expect(chosen == ["a", "b"])
    }

    @Test func mixedNodesServeWholeRequestsAndExcludedNodesAreSkipped() {
        var random = Counter()
        let nodes = [Self.node("m", .mixed, load: 0), Self.node("p", .prefill, load: 0), Self.node("d", .decode, load: 0)]
        let onlyMixed = PlacementPolicy.place(promptTokens: 10, nodes: nodes, excluding: ["p"], using: &random)
        #expect(onlyMixed == .mixed(nodes[0]))
        #expect(PlacementPolicy.place(promptTokens: 10, nodes: nodes, excluding: ["p", "m"], using: &random) == nil)
        // A prefill node with no decode node to pair: a mixed node takes the request.
        let noDecode = [Self.node("p", .prefill, load: 0), Self.node("m", .mixed, load: 5000)]
        for _ in 0..<20 { #expect(PlacementPolicy.place(promptTokens: 10, nodes: noDecode, using: &random) == .mixed(noDecode[1])) }
    }

    @Test func ipcOnOneHostTcpAcrossHostsAndNoPairWithoutACommonProtocol() {
        let here = Self.node("p", .prefill, load: 0, host: "127.0.0.1")
        #expect(PlacementPolicy.transferProtocol(prefill: here.info, decode: Self.node("d", .decode, load: 0, host: "localhost").info) == .ipc)
        #expect(PlacementPolicy.transferProtocol(prefill: here.info, decode: Self.node("d", .decode, load: 0, host: "10.0.0.2").info) == .tcp)
        let ipcOnly = Self.node("d", .decode, load: 0, host: "10.0.0.2", protocols: [.ipc])
        #expect(PlacementPolicy.transferProtocol(prefill: here.info, decode: ipcOnly.info) == nil)
        var random = Counter()
        #expect(PlacementPolicy.place(promptTokens: 10, nodes: [here, ipcOnly], using: &random) == nil)
    }
}
