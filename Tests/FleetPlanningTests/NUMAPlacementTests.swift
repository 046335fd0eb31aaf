import FleetPlanning
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

/// The live machine through libnuma and sysfs: planning must agree with the kernel's view.
@Suite struct LiveTopologyTests {
    @Test func liveCPUModePlanUsesOnlyAllowedCPUs() throws {
        let fleet = try FleetPlanner(environment: [:], executablePath: "/usr/bin/multi-api-server")
            .plan(options(["--num-servers", "1", "--numa-bind", "none"]))
        let allowed = HostSystem.live.allowedCPUs()
        #expect(!allowed.isEmpty)
        if fleet.ranks[0].devices.isEmpty {
            #expect(fleet.ranks[0].cpus == allowed)
        }
    }
}
