import FleetPlanning
import Foundation
import Testing

@Suite struct WorkerArgumentTests {
    let host: FakeHost
    init() throws { host = try FakeHost() }

    var cpuPlanner: FleetPlanner { planner(host.system(allowedCPUs: Array(0..<4))) }

    @Test func eachRankGetsItsOwnValues() throws {
        let fleet = try cpuPlanner.plan(options([
            "--num-servers", "2", "--ports", "8000,8001", "--metrics-ports", "8100,8101", "--log-dir", "/var/log/tandem",
            "--args", "--model", "m.gguf", "--engine-worker-queue-port", "8200,8201", "--cache-queue-port=8300,8301",
            "--pd-comm-port", "8400,8401", "--rdma-comm-ports", "8500,8501,8502,8503",
            "--tensor-parallel-size", "2", "--data-parallel-size", "2", "--splitwise-role", "prefill",
        ]))
        #expect(fleet.ranks[1].arguments == [
            "--model", "m.gguf", "--tensor-parallel-size", "2", "--data-parallel-size", "2", "--splitwise-role", "prefill",
            "--port", "8001", "--metrics-port", "8101", "--engine-worker-queue-port", "8201", "--cache-queue-port", "8301",
            "--pd-comm-port", "8401", "--rdma-comm-ports", "8502,8503", "--local-data-parallel-id", "1",
        ])
        #expect(fleet.ranks[1].environment == ["TANDEM_RANK": "1", "FD_LOG_DIR": "/var/log/tandem/log_1"])
        #expect(fleet.ranks[0].logDirectory == "/var/log/tandem/log_0")
        #expect(fleet.workerBinary == "/bin/true")
    }

    @Test func workerFlagsWithoutArgsAreAccepted() throws {
        let parsed = try options(["--model", "m.gguf", "--num-servers", "2", "--max-num-seqs", "8", "--ports", "8000,8001"])
        #expect(parsed.numServers == 2)
        #expect(parsed.ports == "8000,8001")
        #expect(parsed.workerFlags == ["--model", "m.gguf", "--max-num-seqs", "8"])
        let fleet = try cpuPlanner.plan(parsed)
        #expect(Array(fleet.ranks[0].arguments.prefix(4)) == ["--model", "m.gguf", "--max-num-seqs", "8"])
    }

    @Test func everythingAfterArgsGoesToTheWorkers() throws {
        let parsed = try options(["--block-size", "16", "--num-servers", "1", "--args", "--health-interval", "5", "--model", "x"])
        #expect(parsed.healthInterval == 1)
        #expect(parsed.workerFlags == ["--block-size", "16", "--health-interval", "5", "--model", "x"])
    }

    @Test func supervisorFlagsTakeDecimalSeconds() throws {
        let fleet = try cpuPlanner.plan(options(["--health-interval", "0.2", "--restart-backoff", "0.05", "--shutdown-timeout", "1.5"]))
        #expect(fleet.health.interval == .milliseconds(200))
        #expect(fleet.restart.initialBackoff == .milliseconds(50))
        #expect(fleet.shutdownTimeout == .milliseconds(1500))
        #expect(fleet.host == "127.0.0.1")
    }

    @Test func rankCountComesFromDataParallelSizeOrPorts() throws {
        #expect(try cpuPlanner.plan(options(["--args", "--data-parallel-size", "3"])).ranks.count == 3)
        #expect(try cpuPlanner.plan(options(["--ports", "8000,8001"])).ranks.count == 2)
        #expect(try cpuPlanner.plan(options([])).ranks.count == 1)
    }

    @Test func inconsistentWorkerFlagsAreErrors() throws {
        try expectPlanningError("worker flag --data-parallel-size 4 does not match --num-servers 2",
                                ["--num-servers", "2", "--args", "--data-parallel-size", "4"], planner: cpuPlanner)
        try expectPlanningError("worker flag --port is set per rank by the supervisor: give the API ports with --ports",
                                ["--args", "--port", "8000"], planner: cpuPlanner)
        try expectPlanningError("worker flag --tensor-parallel-size needs a whole number >= 1, got '0'",
                                ["--args", "--tensor-parallel-size", "0"], planner: cpuPlanner)
        try expectPlanningError("worker flag --pd-comm-port needs a value", ["--args", "--pd-comm-port"], planner: cpuPlanner)
        try expectPlanningError("--num-servers must be at least 1, got 0", ["--num-servers", "0"], planner: cpuPlanner)
    }

    @Test func settingsAreValidated() throws {
        try expectPlanningError("--health-interval must be a number of seconds > 0, got 0.0",
                                ["--health-interval", "0"], planner: cpuPlanner)
        try expectPlanningError("--restart-backoff-max (1.0) must not be below --restart-backoff (2.0)",
                                ["--restart-backoff", "2", "--restart-backoff-max", "1"], planner: cpuPlanner)
        try expectPlanningError("--restart-jitter must be from 0 up to (not including) 1, got 1.5",
                                ["--restart-jitter", "1.5"], planner: cpuPlanner)
        try expectPlanningError("--health-failure-threshold must be at least 1, got 0",
                                ["--health-failure-threshold", "0"], planner: cpuPlanner)
        try expectPlanningError("--host must be an IPv4 address, got 'example'", ["--host", "example"], planner: cpuPlanner)
        try expectPlanningError("--numa-bind must be auto, none or NUMA node numbers separated by commas, got 'both'",
                                ["--numa-bind", "both"], planner: cpuPlanner)
    }

    @Test func theDefaultWorkerBinaryIsApiServerNextToTheSupervisor() throws {
        let parsed = try SupervisorOptions.parse([])
        let missing = FleetPlanner(system: host.system(allowedCPUs: [0]), environment: [:],
                                   prober: fakeProber(), executablePath: host.root + "/bin/multi-api-server")
        #expect(throws: PlanningError("worker binary \(host.root)/bin/api-server does not exist (set it with --worker-binary)")) {
            try missing.plan(parsed)
        }
        let beside = FleetPlanner(system: host.system(allowedCPUs: [0]), environment: [:],
                                  prober: fakeProber(), executablePath: "/bin/multi-api-server")
        #expect(throws: PlanningError("worker binary /bin/api-server does not exist (set it with --worker-binary)")) {
            try beside.plan(parsed)
        }
        let notExecutable = host.root + "/not-executable"
        try "data".write(toFile: notExecutable, atomically: true, encoding: .utf8)
        #expect(throws: PlanningError("worker binary \(notExecutable) is not executable")) {
            try missing.plan(SupervisorOptions.parse(["--worker-binary", notExecutable]))
        }
    }
}
