import FleetPlanning
import Testing

/// `--router` and `--register-token`: passed on to every rank, and what the supervisor needs
/// to take a rank out of the router.
@Suite struct RouterPlanningTests {
    let host: FakeHost
    init() throws { host = try FakeHost() }

    var cpuPlanner: FleetPlanner { planner(host.system(allowedCPUs: Array(0..<4))) }

    @Test func theSupervisorsRouterGoesToEveryRankAndItsTokenIntoTheEnvironment() throws {
        let fleet = try cpuPlanner.plan(options([
            "--num-servers", "2", "--ports", "8000,8001", "--router", "10.0.0.5:8109", "--register-token", "s3cret",
            "--args", "--model", "m.gguf",
        ]))
        #expect(Array(fleet.ranks[1].arguments.prefix(4)) == ["--model", "m.gguf", "--router", "10.0.0.5:8109"])
        #expect(!fleet.ranks[1].arguments.contains("s3cret"))
        #expect(fleet.ranks[1].environment["TANDEM_REGISTER_TOKEN"] == "s3cret")
        #expect(fleet.router == RouterSettings(baseURL: "http://10.0.0.5:8109", token: "s3cret", workerHost: "127.0.0.1"))
        #expect(fleet.router?.workerURL(apiPort: fleet.ranks[1].ports.api) == "http://127.0.0.1:8001")
    }

    @Test func aRouterAmongTheWorkerFlagsIsUsedAsGiven() throws {
        let fleet = try planner(host.system(allowedCPUs: [0]), environment: ["TANDEM_REGISTER_TOKEN": "from-env"]).plan(options([
            "--ports", "8000", "--args", "--host", "192.168.1.7", "--router", "http://router.local:8109/",
        ]))
        #expect(Array(fleet.ranks[0].arguments.prefix(4)) == ["--host", "192.168.1.7", "--router", "http://router.local:8109/"])
        #expect(fleet.router == RouterSettings(baseURL: "http://router.local:8109", token: "from-env", workerHost: "192.168.1.7"))
        #expect(fleet.ranks[0].environment["TANDEM_REGISTER_TOKEN"] == "from-env")
        #expect(try cpuPlanner.plan(options([])).router == nil)
    }

    @Test func routerMistakesAreErrors() throws {
        try expectPlanningError(
            "--router is given both to multi-api-server and in the worker flags: give it once (multi-api-server passes its --router to every rank)",
            ["--router", "127.0.0.1:8109", "--args", "--router", "127.0.0.1:8109"], planner: cpuPlanner)
        try expectPlanningError(
            "--register-token is given both to multi-api-server and in the worker flags: give it once (multi-api-server hands its token to every rank)",
            ["--router", "127.0.0.1:8109", "--register-token", "a", "--args", "--register-token", "b"], planner: cpuPlanner)
        try expectPlanningError("--register-token needs --router", ["--register-token", "a"], planner: cpuPlanner)
        try expectPlanningError("--router 'localhost' is not HOST:PORT or an http:// URL such as http://127.0.0.1:8109",
                                ["--router", "localhost"], planner: cpuPlanner)
        try expectPlanningError("--router 'ftp://x:1' is not HOST:PORT or an http:// URL such as http://127.0.0.1:8109",
                                ["--args", "--router", "ftp://x:1"], planner: cpuPlanner)
    }
}
