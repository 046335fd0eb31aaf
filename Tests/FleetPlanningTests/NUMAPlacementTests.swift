import FleetPlanning
import Foundation
import Testing

/// A fake two-node machine: node 0 has CPUs 0-3, node 1 has CPUs 4-7.
@Suite struct NUMAPlacementTests {
    let host: FakeHost
    init() throws {
        host = try FakeHost()
        try host.addNode(0, cpulist: "0-3")
        try host.addNode(1, cpulist: "4-7")
    }

    func twoNodePlanner(allowed: [Int] = Array(0..<8), environment: [String: String] = [:], nvidiaSMI: String? = nil) -> FleetPlanner {
        planner(host.system(allowedCPUs: allowed, nvidiaSMI: nvidiaSMI), environment: environment)
    }

    @Test func gpuRanksBindToTheirGPUsNode() throws {
        try host.addPCIDevice("0000:3b:00.0", numaNode: 0)
        try host.addPCIDevice("0000:5e:00.0", numaNode: 0)
        try host.addPCIDevice("0000:86:00.0", numaNode: 1)
        try host.addPCIDevice("0000:af:00.0", numaNode: 1)
        let fleet = try twoNodePlanner().plan(options(["--num-servers", "2", "--args", "--tensor-parallel-size", "2"]))
        #expect(fleet.ranks.map(\.devices) == [["0", "1"], ["2", "3"]])
        #expect(fleet.ranks.map(\.cpus) == [[0, 1, 2, 3], [4, 5, 6, 7]])
        #expect(fleet.ranks.map(\.numaNodes) == [[0], [1]])
    }

    @Test func aGPUWithoutANodeLeavesItsRankUnbound() throws {
        try host.addPCIDevice("0000:3b:00.0", numaNode: 1)
        try host.addPCIDevice("0000:86:00.0", numaNode: -1)
        let fleet = try twoNodePlanner().plan(options(["--num-servers", "2"]))
        #expect(fleet.ranks.map(\.numaNodes) == [[1], nil])
        #expect(fleet.ranks.map(\.cpus) == [[4, 5, 6, 7], nil])
    }

    @Test func visibleDevicesFindTheirNodeThroughNvidiaSMI() throws {
        try host.addPCIDevice("0000:3b:00.0", numaNode: 0)
        try host.addPCIDevice("0000:86:00.0", numaNode: 1)
        let smi = "0, GPU-aaaa, 00000000:3B:00.0\n1, GPU-bbbb, 00000000:86:00.0\n"
        let byUUID = try twoNodePlanner(environment: ["CUDA_VISIBLE_DEVICES": "GPU-bbbb,GPU-aaaa"], nvidiaSMI: smi)
            .plan(options(["--num-servers", "2"]))
        #expect(byUUID.ranks.map(\.numaNodes) == [[1], [0]])
        let byIndex = try twoNodePlanner(environment: ["CUDA_VISIBLE_DEVICES": "1"], nvidiaSMI: smi).plan(options([]))
        #expect(byIndex.ranks[0].numaNodes == [1])
        #expect(byIndex.ranks[0].cpus == [4, 5, 6, 7])
        let none = try twoNodePlanner(environment: ["CUDA_VISIBLE_DEVICES": "1"], nvidiaSMI: smi).plan(options(["--numa-bind", "none"]))
        #expect(none.ranks[0].numaNodes == nil && none.ranks[0].cpus == nil)
    }

    @Test func explicitNodesInGPUModeGiveEachRankThatNodesCPUs() throws {
        let fleet = try twoNodePlanner(environment: ["CUDA_VISIBLE_DEVICES": "0,1"])
            .plan(options(["--num-servers", "2", "--numa-bind", "1"]))
        #expect(fleet.ranks.map(\.devices) == [["0"], ["1"]])
        #expect(fleet.ranks.map(\.cpus) == [[4, 5, 6, 7], [4, 5, 6, 7]])
        #expect(fleet.ranks.map(\.numaNodes) == [[1], [1]])
        try expectPlanningError("--numa-bind: NUMA node 0 has none of the allowed CPUs (4-7)",
                                ["--num-servers", "2", "--numa-bind", "0"],
                                planner: twoNodePlanner(allowed: [4, 5, 6, 7], environment: ["CUDA_VISIBLE_DEVICES": "0,1"]))
    }

    @Test func cpuRanksSpreadAcrossNodes() throws {
        let two = try twoNodePlanner().plan(options(["--num-servers", "2"]))
        #expect(two.ranks.map(\.cpus) == [[0, 1, 2, 3], [4, 5, 6, 7]])
        #expect(two.ranks.map(\.numaNodes) == [[0], [1]])
        let four = try twoNodePlanner().plan(options(["--num-servers", "4"]))
        #expect(four.ranks.map(\.cpus) == [[0, 1], [2, 3], [4, 5], [6, 7]])
        #expect(four.ranks.map(\.numaNodes) == [[0], [0], [1], [1]])
        let three = try twoNodePlanner().plan(options(["--num-servers", "3"]))
        #expect(three.ranks.map(\.cpus) == [[0, 1], [2, 3], [4, 5, 6, 7]])
    }

    @Test func cpuRanksUseOnlyAllowedCPUs() throws {
        let fleet = try twoNodePlanner(allowed: [2, 3, 4, 5, 6]).plan(options(["--num-servers", "2"]))
        #expect(fleet.ranks.map(\.cpus) == [[2, 3], [4, 5, 6]])
        // More ranks on a node than it has allowed CPUs: the whole set is split instead.
        let crowded = try twoNodePlanner(allowed: [3, 4, 5, 6]).plan(options(["--num-servers", "4"]))
        #expect(crowded.ranks.map(\.cpus) == [[3], [4], [5], [6]])
        #expect(crowded.ranks.map(\.numaNodes) == [[0], [1], [1], [1]])
    }

    @Test func explicitNodes() throws {
        let one = try twoNodePlanner().plan(options(["--num-servers", "2", "--numa-bind", "1"]))
        #expect(one.ranks.map(\.cpus) == [[4, 5], [6, 7]])
        #expect(one.ranks.map(\.numaNodes) == [[1], [1]])
        let swapped = try twoNodePlanner().plan(options(["--num-servers", "2", "--numa-bind", "1,0"]))
        #expect(swapped.ranks.map(\.numaNodes) == [[1], [0]])
        try expectPlanningError("--numa-bind: NUMA node 2 does not exist (this host has nodes 0,1)",
                                ["--num-servers", "2", "--numa-bind", "0,2"], planner: twoNodePlanner())
        try expectPlanningError("--numa-bind gives 3 nodes for 2 ranks; give one per rank or one for all",
                                ["--num-servers", "2", "--numa-bind", "0,1,0"], planner: twoNodePlanner())
        try expectPlanningError("--numa-bind: NUMA node 0 has 2 allowed CPUs for 3 ranks",
                                ["--num-servers", "3", "--numa-bind", "0"], planner: twoNodePlanner(allowed: [2, 3, 4]))
    }

    @Test func cpuListFormat() {
        #expect(CPUList.parse("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11])
        #expect(CPUList.parse("3-1") == nil)
        #expect(CPUList.format([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8")
    }
}

/// The live machine: its allowed CPUs and NUMA nodes as the kernel reports them, through the
/// planner in CPU mode. What each rank gets is derived from those, so the test holds on a
/// 2-core and on a 64-core host, with one NUMA node or several.
@Suite struct LiveTopologyTests {
    /// This process's allowed CPUs as the kernel reports them in /proc/self/status, read
    /// independently of the planner (which asks sched_getaffinity through libnuma).
    static func kernelAllowedCPUs() throws -> [Int] {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
        return try #require(CPUList.parse(String(line.dropFirst("Cpus_allowed_list:".count))))
    }

    /// The live NUMA nodes and their CPUs from sysfs (none where the kernel shows none).
    static func liveNodes() -> [Int: [Int]] {
        let folder = "/sys/devices/system/node"
        var nodes: [Int: [Int]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where entry.hasPrefix("node") {
            guard let node = Int(entry.dropFirst(4)),
                  let text = try? String(contentsOfFile: "\(folder)/\(entry)/cpulist", encoding: .utf8),
                  let cpus = CPUList.parse(text) else { continue }
            nodes[node] = cpus
        }
        return nodes
    }

    /// The live host without its GPUs: a root holding only a link to the live NUMA nodes, the
    /// live allowed CPUs and libnuma, so the planner is in CPU mode on any machine.
    static func withLiveCPUsAndNodes(_ body: (FleetPlanner) throws -> Void) throws {
        let root = NSTemporaryDirectory() + "tandem-live-host-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/sys/devices/system", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/sys/devices/system/node",
                                                   withDestinationPath: "/sys/devices/system/node")
        let system = HostSystem(root: root, allowedCPUs: HostSystem.live.allowedCPUs, usesLibnuma: true)
        try body(planner(system))
    }

    @Test func theLiveAllowedCPUsAreTheKernels() throws {
        let allowed = try Self.kernelAllowedCPUs()
        #expect(!allowed.isEmpty)
        #expect(HostSystem.live.allowedCPUs() == allowed)
    }

    /// One rank, two, and one per allowed CPU: disjoint shares of the allowed CPUs, as even as
    /// possible; with `auto`, each rank's CPUs on the nodes its memory is bound to.
    @Test(arguments: ["none", "auto"])
    func cpuRanksShareTheLiveAllowedCPUs(bind: String) throws {
        let allowed = try Self.kernelAllowedCPUs()
        let nodes = Self.liveNodes()
        let nodeOf = Dictionary(nodes.flatMap { node, cpus in cpus.map { ($0, node) } }, uniquingKeysWith: min)
        try Self.withLiveCPUsAndNodes { planner in
            for ranks in Set([1, 2, allowed.count]).sorted() where ranks <= allowed.count {
                let fleet = try planner.plan(options(["--num-servers", "\(ranks)", "--numa-bind", bind]))
                let shares = try fleet.ranks.map { rank in try #require(rank.cpus, "rank \(rank.rank) of \(ranks) is not pinned") }
                #expect(shares.allSatisfy { !$0.isEmpty }, "\(ranks) ranks: \(shares)")
                #expect(Set(shares.joined()).count == shares.joined().count, "\(ranks) ranks share a CPU: \(shares)")
                #expect(Set(shares.joined()).isSubset(of: allowed), "\(ranks) ranks: \(shares) outside \(allowed)")
                let placedOnNodes = bind == "auto" && nodes.values.contains { !Set($0).isDisjoint(with: allowed) }
                if !placedOnNodes {
                    // The allowed CPUs in order, cut into contiguous shares whose sizes differ by at most one.
                    #expect(fleet.ranks.allSatisfy { $0.numaNodes == nil })
                    #expect(Array(shares.joined()) == allowed, "\(ranks) ranks: \(shares)")
                    #expect(shares.map(\.count).max()! - shares.map(\.count).min()! <= 1, "\(ranks) ranks: \(shares)")
                    continue
                }
                for (rank, share) in zip(fleet.ranks, shares) {
                    let boundNodes = try #require(rank.numaNodes, "rank \(rank.rank) of \(ranks) has no memory binding")
                    #expect(Set(boundNodes).isSubset(of: nodes.keys), "rank \(rank.rank): nodes \(boundNodes) of \(nodes.keys.sorted())")
                    #expect(share.allSatisfy { nodeOf[$0].map(boundNodes.contains) == true },
                            "rank \(rank.rank) of \(ranks): CPUs \(share) outside its nodes \(boundNodes)")
                }
            }
        }
    }
}
