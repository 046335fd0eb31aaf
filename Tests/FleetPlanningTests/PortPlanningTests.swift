import FleetPlanning
import Glibc
import Testing
import TestSupport

@Suite struct PortValidationTests {
    let host: FakeHost
    init() throws { host = try FakeHost() }

    var cpuPlanner: FleetPlanner { planner(host.system(allowedCPUs: Array(0..<4))) }

    @Test func explicitPortsGoToTheirRanks() throws {
        let fleet = try cpuPlanner.plan(options([
            "--num-servers", "2", "--ports", "8000,8001", "--metrics-ports", "8100,8101", "--control-port", "8999",
            "--args", "--engine-worker-queue-port", "8200,8201", "--cache-queue-port", "8300,8301",
            "--pd-comm-port", "8400,8401", "--rdma-comm-ports", "8500,8501,8502,8503", "--tensor-parallel-size", "2",
        ]))
        #expect(fleet.controlPort == 8999)
        #expect(fleet.ranks[1].ports == RankPorts(api: 8001, metrics: 8101, engineWorkerQueue: 8201, cacheQueue: 8301,
                                                  pdComm: 8401, rdmaComm: [8502, 8503]))
    }

    @Test func countsMustMatch() throws {
        try expectPlanningError("--ports gives 3 ports for 2 ranks; give one per rank",
                                ["--num-servers", "2", "--ports", "8000,8001,8002"], planner: cpuPlanner)
        try expectPlanningError("--metrics-ports gives 1 port for 2 ranks; give one per rank",
                                ["--num-servers", "2", "--metrics-ports", "8000"], planner: cpuPlanner)
        try expectPlanningError("--engine-worker-queue-port gives 1 port for 2 ranks; give one per rank",
                                ["--num-servers", "2", "--args", "--engine-worker-queue-port", "8000"], planner: cpuPlanner)
        try expectPlanningError("--rdma-comm-ports gives 2 ports but 2 ranks × 2 devices need 4 (one per device)",
                                ["--num-servers", "2", "--args", "--tensor-parallel-size", "2", "--rdma-comm-ports", "9000,9001"],
                                planner: cpuPlanner)
    }

    @Test func portsMustBeNumbersInRange() throws {
        try expectPlanningError("--ports: port 70000 is out of range 1-65535",
                                ["--num-servers", "2", "--ports", "8000,70000"], planner: cpuPlanner)
        try expectPlanningError("--metrics-ports: port 0 is out of range 1-65535",
                                ["--num-servers", "1", "--metrics-ports", "0"], planner: cpuPlanner)
        try expectPlanningError("--cache-queue-port: 'x1' is not a port number",
                                ["--num-servers", "1", "--cache-queue-port", "x1"], planner: cpuPlanner)
        try expectPlanningError("--ports: '' is not a port number",
                                ["--num-servers", "2", "--ports", "8000,"], planner: cpuPlanner)
    }

    @Test func duplicatesNameBothUses() throws {
        try expectPlanningError("port 8001 is given twice: rank 1 api and rank 0 metrics",
                                ["--num-servers", "2", "--ports", "8000,8001", "--metrics-ports", "8001,8002"], planner: cpuPlanner)
        try expectPlanningError("port 8000 is given twice: rank 0 api and rank 1 api",
                                ["--num-servers", "2", "--ports", "8000,8000"], planner: cpuPlanner)
        try expectPlanningError("port 8000 is given twice: rank 0 api and control",
                                ["--ports", "8000", "--control-port", "8000"], planner: cpuPlanner)
        try expectPlanningError("port 9001 is given twice: rank 1 pd-comm and rank 0 rdma-comm",
                                ["--num-servers", "2", "--args", "--rdma-comm-ports", "9001,9002", "--pd-comm-port", "9000,9001"],
                                planner: cpuPlanner)
    }

    @Test func aTakenPortNamesRankKindAndPort() throws {
        let mocked = planner(host.system(allowedCPUs: Array(0..<4)), prober: fakeProber(taken: [8101]))
        try expectPlanningError("rank 1 metrics port 8101 is already in use",
                                ["--num-servers", "2", "--metrics-ports", "8100,8101"], planner: mocked)
        let controlTaken = planner(host.system(allowedCPUs: Array(0..<4)), prober: fakeProber(taken: [7000]))
        try expectPlanningError("control port 7000 is already in use", ["--control-port", "7000"], planner: controlTaken)
    }

    @Test func freePortsSkipThePortsAlreadyPlanned() throws {
        // The mock kernel offers 20000, 20001, … ; 20000 and 20002 are taken by explicit ports.
        let fleet = try cpuPlanner.plan(options(["--num-servers", "2", "--ports", "20000,20002", "--control-port", "20003"]))
        #expect(fleet.ranks.map(\.ports.metrics) == [20001, 20004])
        #expect(fleet.controlPort == 20003)
        let all = fleet.ranks.flatMap { [$0.ports.api, $0.ports.metrics, $0.ports.engineWorkerQueue, $0.ports.cacheQueue, $0.ports.pdComm] + $0.ports.rdmaComm } + [fleet.controlPort]
        #expect(Set(all).count == all.count)
    }
}

/// Real sockets: the live prober binds, and a port this test holds open must be found in use.
@Suite(.serialized) struct LivePortTests {
    let host: FakeHost
    init() throws { host = try FakeHost() }

    func livePlanner() -> FleetPlanner {
        FleetPlanner(system: host.system(allowedCPUs: Array(0..<8)), environment: [:],
                     executablePath: "/usr/bin/multi-api-server")
    }

    @Test func aPortHeldByAnotherSocketIsInUse() throws {
        let held = try HeldPort()
        let freePort = try freeLoopbackPort()
        try expectPlanningError("rank 1 api port \(held.port) is already in use",
                                ["--num-servers", "2", "--ports", "\(freePort),\(held.port)"], planner: livePlanner())
        try expectPlanningError("rank 0 engine-worker-queue port \(held.port) is already in use",
                                ["--num-servers", "1", "--args", "--engine-worker-queue-port", "\(held.port)"], planner: livePlanner())
        withExtendedLifetime(held) {}
    }

    @Test func freePortsFromTheKernelAreDistinctAndFree() throws {
        let held = try HeldPort()
        let fleet = try livePlanner().plan(options(["--num-servers", "4", "--args", "--tensor-parallel-size", "2"]))
        let all = fleet.ranks.flatMap { [$0.ports.api, $0.ports.metrics, $0.ports.engineWorkerQueue, $0.ports.cacheQueue, $0.ports.pdComm] + $0.ports.rdmaComm } + [fleet.controlPort]
        #expect(all.count == 4 * 7 + 1)
        #expect(Set(all).count == all.count)
        #expect(!all.contains(held.port))
        #expect(all.allSatisfy { (1...65535).contains($0) })
        #expect(fleet.ranks.allSatisfy { $0.ports.rdmaComm.count == 2 })
    }

    /// The planned ports stay reserved after planning: a socket without SO_REUSEADDR (like
    /// another program's, or a connection's local port) cannot have them, while a worker's
    /// SO_REUSEADDR listener can.
    @Test func plannedPortsStayReservedForTheirWorkers() throws {
        let fleet = try livePlanner().plan(options(["--num-servers", "2"]))
        for port in fleet.ranks.flatMap({ [$0.ports.api, $0.ports.engineWorkerQueue] }) + [fleet.controlPort] {
            #expect(bindLoopback(port: port, reuseAddress: false, listening: false) == EADDRINUSE, "port \(port)")
            #expect(bindLoopback(port: port, reuseAddress: true, listening: true) == 0, "port \(port)")
        }
    }
}

/// Binds (and optionally listens on) 127.0.0.1:`port` once and closes; 0, or the errno.
private func bindLoopback(port: Int, reuseAddress: Bool, listening: Bool) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return errno }
    defer { close(fd) }
    var reuse: Int32 = reuseAddress ? 1 : 0
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
    var address = loopbackAddress(port: port)
    let done = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 && (!listening || listen(fd, 1) == 0)
        }
    }
    return done ? 0 : errno
}
