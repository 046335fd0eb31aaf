import FleetPlanning
import Testing

@Suite struct DeviceSplitTests {
    let host: FakeHost
    init() throws { host = try FakeHost() }

    func plan(_ visible: String?, _ arguments: [String]) throws -> FleetPlan {
        let environment = visible.map { ["CUDA_VISIBLE_DEVICES": $0] } ?? [:]
        return try planner(host.system(allowedCPUs: Array(0..<8)), environment: environment).plan(options(arguments))
    }

    func expectError(_ visible: String, _ arguments: [String], _ message: String,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        try expectPlanningError(message, arguments,
                                planner: planner(host.system(allowedCPUs: Array(0..<8)), environment: ["CUDA_VISIBLE_DEVICES": visible]),
                                sourceLocation: sourceLocation)
    }

    @Test func indicesAreSplitTensorParallelPerRank() throws {
        let fleet = try plan("4,5,6,7", ["--num-servers", "2", "--args", "--tensor-parallel-size", "2"])
        #expect(fleet.ranks.map(\.devices) == [["4", "5"], ["6", "7"]])
        #expect(fleet.ranks.map { $0.environment["CUDA_VISIBLE_DEVICES"] } == ["4,5", "6,7"])
        #expect(fleet.ranks.map(\.cpus) == [nil, nil])
    }

    @Test func gpuUUIDsAreSplitAsGiven() throws {
        let fleet = try plan("GPU-aaaa-1111, GPU-bbbb-2222,GPU-cccc-3333", ["--num-servers", "3"])
        #expect(fleet.ranks.map(\.devices) == [["GPU-aaaa-1111"], ["GPU-bbbb-2222"], ["GPU-cccc-3333"]])
        #expect(fleet.ranks[1].environment["CUDA_VISIBLE_DEVICES"] == "GPU-bbbb-2222")
    }

    @Test func migIDsAreSplitAsGiven() throws {
        let fleet = try plan("MIG-0a1b2c3d-0000-1111-2222-333344445555,MIG-0a1b2c3d-0000-1111-2222-333344446666",
                             ["--num-servers", "1", "--tensor-parallel-size", "2"])
        #expect(fleet.ranks.count == 1)
        #expect(fleet.ranks[0].environment["CUDA_VISIBLE_DEVICES"]
                == "MIG-0a1b2c3d-0000-1111-2222-333344445555,MIG-0a1b2c3d-0000-1111-2222-333344446666")
    }

    @Test func emptyIsAnError() throws {
        try expectError("", ["--num-servers", "1"],
                        "CUDA_VISIBLE_DEVICES is set but empty: no device is visible (unset it for CPU mode or GPU discovery)")
        try expectError("0,,1", ["--num-servers", "2"], "CUDA_VISIBLE_DEVICES has an empty entry: '0,,1'")
    }

    @Test func duplicatesAreAnError() throws {
        try expectError("0,1,1,2", ["--num-servers", "4"], "CUDA_VISIBLE_DEVICES lists device '1' twice")
        try expectError("GPU-a,GPU-a", ["--num-servers", "2"], "CUDA_VISIBLE_DEVICES lists device 'GPU-a' twice")
    }

    @Test func mixedFormsAndJunkAreErrors() throws {
        try expectError("0,GPU-abc", ["--num-servers", "2"],
                        "CUDA_VISIBLE_DEVICES mixes device indices and GPU- UUIDs ('0', 'GPU-abc'); use one form")
        try expectError("0,gpu1", ["--num-servers", "2"],
                        "CUDA_VISIBLE_DEVICES entry 'gpu1' is not a device index, GPU-<uuid> or MIG-<id>")
    }

    @Test func countMustEqualRanksTimesTensorParallel() throws {
        try expectError("0,1,2", ["--num-servers", "2", "--args", "--tensor-parallel-size", "2"],
                        "CUDA_VISIBLE_DEVICES has 3 devices but 2 ranks × tensor-parallel-size 2 need 4")
        try expectError("0,1,2,3,4", ["--num-servers", "2", "--args", "--tensor-parallel-size", "2"],
                        "CUDA_VISIBLE_DEVICES has 5 devices but 2 ranks × tensor-parallel-size 2 need 4")
        try expectError("0", ["--num-servers", "2"], "CUDA_VISIBLE_DEVICES has 1 device but 2 ranks × tensor-parallel-size 1 need 2")
    }

    @Test func cpuModeGivesEachRankADisjointShare() throws {
        let fleet = try plan(nil, ["--num-servers", "3", "--numa-bind", "none"])
        #expect(fleet.ranks.map(\.cpus) == [[0, 1, 2], [3, 4, 5], [6, 7]])
        #expect(fleet.ranks.map(\.numaNodes) == [nil, nil, nil])
        #expect(fleet.ranks.allSatisfy { $0.devices.isEmpty && $0.environment["CUDA_VISIBLE_DEVICES"] == nil })
    }

    @Test func cpuModeNeedsACPUPerRank() throws {
        let small = planner(host.system(allowedCPUs: [2, 3]))
        try expectPlanningError("CPU mode needs at least one CPU per rank: 3 ranks but only 2 allowed CPUs (2-3)",
                                ["--num-servers", "3"], planner: small)
    }

    @Test func discoveredGPUsAreUsedInPCIOrder() throws {
        try host.addPCIDevice("0000:86:00.0", numaNode: -1)
        try host.addPCIDevice("0000:3b:00.0", numaNode: -1)
        try host.addPCIDevice("0000:00:02.0", vendor: "0x8086", pciClass: "0x030000", numaNode: -1) // not NVIDIA
        try host.addPCIDevice("0000:3c:00.0", pciClass: "0x040300", numaNode: -1) // NVIDIA audio
        let fleet = try plan(nil, ["--num-servers", "2"])
        #expect(fleet.ranks.map(\.devices) == [["0"], ["1"]])
        try expectPlanningError("this host has 2 GPUs but 3 ranks × tensor-parallel-size 1 need 3",
                                ["--num-servers", "3"], planner: planner(host.system(allowedCPUs: Array(0..<8))))
    }
}
