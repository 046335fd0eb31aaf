import Foundation
import PDProtocol

/// Turns the command line, the environment and the host into a complete `FleetPlan`, or
/// one `PlanningError` naming what is wrong. Nothing is started here.
public struct FleetPlanner: Sendable {
    public var system: HostSystem
    public var environment: [String: String]
    /// The prober for a given probe address; the live one binds for real.
    public var prober: @Sendable (String) -> PortProber
    /// The running supervisor's own path (for the default worker binary next to it).
    public var executablePath: String

    public init(system: HostSystem = .live,
                environment: [String: String] = ProcessInfo.processInfo.environment,
                prober: @escaping @Sendable (String) -> PortProber = { PortProber.live(host: $0) },
                executablePath: String = FleetPlanner.runningExecutablePath()) {
        self.system = system
        self.environment = environment
        self.prober = prober
        self.executablePath = executablePath
    }

    public static func runningExecutablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    public func plan(_ options: SupervisorOptions) throws(PlanningError) -> FleetPlan {
        var worker = try WorkerFlags.parse(options.workerFlags)
        let router = try routerSettings(options, worker: worker)
        if let given = options.router { worker.passthrough += ["--router", given] }
        let supervisorToken = options.registerToken ?? environment["TANDEM_REGISTER_TOKEN"]
        let health = try Self.healthSettings(options)
        let restart = try Self.restartSettings(options)
        let shutdownTimeout = try Self.seconds(options.shutdownTimeout, "--shutdown-timeout", allowZero: true)
        try Self.checkLogs(options)

        let givenPorts = options.ports.map { $0.split(separator: ",", omittingEmptySubsequences: false).count }
        let ranks = options.numServers ?? worker.dataParallelSize ?? givenPorts ?? 1
        guard ranks >= 1 else { throw PlanningError("--num-servers must be at least 1, got \(ranks)") }
        if let dataParallelSize = worker.dataParallelSize, dataParallelSize != ranks {
            throw PlanningError("worker flag --data-parallel-size \(dataParallelSize) does not match --num-servers \(ranks)")
        }
        let tensorParallel = worker.tensorParallelSize ?? 1
        let bind = try NUMABind.parse(options.numaBind)
        let host = try probeAddress(options.host)
        let workerBinary = try resolveWorkerBinary(options.workerBinary)

        // Devices and placement.
        let topology = NUMATopology.read(system)
        let allowedCPUs = system.allowedCPUs()
        let devicesPerRank: [[String]]
        let placements: [RankPlacement]
        if let gpuSlices = try gpuSlices(ranks: ranks, tensorParallel: tensorParallel, needBusIDs: bind == .auto) {
            devicesPerRank = gpuSlices.map { $0.map(\.entry) }
            let gpuNodes = gpuSlices.map { slice in slice.map { $0.busID.flatMap { NUMATopology.node(ofPCIDevice: $0, system) } } }
            placements = try RankPlacer.placeGPURanks(gpuNodes: gpuNodes, allowedCPUs: allowedCPUs, topology: topology, bind: bind)
        } else {
            devicesPerRank = Array(repeating: [], count: ranks)
            placements = try RankPlacer.placeCPURanks(count: ranks, allowedCPUs: allowedCPUs, topology: topology, bind: bind)
        }

        let request = PortRequest(api: options.ports, metrics: options.metricsPorts,
                                  engineWorkerQueue: worker.engineWorkerQueuePorts, cacheQueue: worker.cacheQueuePorts,
                                  pdComm: worker.pdCommPorts, rdmaComm: worker.rdmaCommPorts, control: options.controlPort)
        let ports = try PortPlanner.plan(request, ranks: ranks, devicesPerRank: tensorParallel, prober: prober(host))

        let rankPlans = (0..<ranks).map { rank in
            let rankPorts = ports.ranks[rank]
            let logDirectory = "\(options.logDir)/log_\(rank)"
            var environment = ["TANDEM_RANK": String(rank), "FD_LOG_DIR": logDirectory]
            if router != nil, worker.registerToken == nil, let supervisorToken { environment["TANDEM_REGISTER_TOKEN"] = supervisorToken }
            if !devicesPerRank[rank].isEmpty {
                environment["CUDA_VISIBLE_DEVICES"] = devicesPerRank[rank].joined(separator: ",")
            }
            return RankPlan(rank: rank, devices: devicesPerRank[rank], cpus: placements[rank].cpus,
                            numaNodes: placements[rank].numaNodes, ports: rankPorts,
                            arguments: Self.workerArguments(worker.passthrough, rank: rank, ports: rankPorts),
                            environment: environment, logDirectory: logDirectory)
        }
        return FleetPlan(workerBinary: workerBinary, ranks: rankPlans, controlPort: ports.control,
                         logDirectory: options.logDir, logMaxBytes: options.logMaxBytes, logBackups: options.logBackups,
                         health: health, restart: restart, shutdownTimeout: shutdownTimeout, host: host, router: router)
    }

    /// The router from `--router` (passed on to every rank) or from the worker flags, never
    /// both; its token from `--register-token`, the worker flags or `$TANDEM_REGISTER_TOKEN`.
    func routerSettings(_ options: SupervisorOptions, worker: WorkerFlags) throws(PlanningError) -> RouterSettings? {
        if options.router != nil && worker.router != nil {
            throw PlanningError("--router is given both to multi-api-server and in the worker flags: give it once (multi-api-server passes its --router to every rank)")
        }
        if options.registerToken != nil && worker.registerToken != nil {
            throw PlanningError("--register-token is given both to multi-api-server and in the worker flags: give it once (multi-api-server hands its token to every rank)")
        }
        guard let given = options.router ?? worker.router else {
            if options.registerToken != nil { throw PlanningError("--register-token needs --router") }
            return nil
        }
        guard let baseURL = RouterAddress.baseURL(given) else { throw PlanningError(RouterAddress.invalid(given)) }
        let token = options.registerToken ?? worker.registerToken ?? environment["TANDEM_REGISTER_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return RouterSettings(baseURL: baseURL, token: token,
                              workerHost: PeerEndpoint.advertisedHost(listeningOn: worker.host ?? "127.0.0.1"))
    }

    /// The worker's flags as given, then its own ports and rank id (FastDeploy appends
    /// `--port --metrics-port --local-data-parallel-id` the same way).
    static func workerArguments(_ passthrough: [String], rank: Int, ports: RankPorts) -> [String] {
        passthrough + [
            "--port", String(ports.api),
            "--metrics-port", String(ports.metrics),
            "--engine-worker-queue-port", String(ports.engineWorkerQueue),
            "--cache-queue-port", String(ports.cacheQueue),
            "--pd-comm-port", String(ports.pdComm),
            "--rdma-comm-ports", ports.rdmaComm.map(String.init).joined(separator: ","),
            "--local-data-parallel-id", String(rank),
        ]
    }

    private struct GPUEntry {
        var entry: String
        var busID: String?
    }

    /// Each rank's devices [i·TP, (i+1)·TP), or nil for CPU mode (no CUDA_VISIBLE_DEVICES
    /// and no GPU found).
    private func gpuSlices(ranks: Int, tensorParallel: Int, needBusIDs: Bool) throws(PlanningError) -> [[GPUEntry]]? {
        let needed = ranks * tensorParallel
        let entries: [GPUEntry]
        if let visible = environment["CUDA_VISIBLE_DEVICES"] {
            let devices = try VisibleDevices.parse(visible)
            guard devices.count == needed else {
                throw PlanningError("CUDA_VISIBLE_DEVICES has \(devices.count) device\(devices.count == 1 ? "" : "s") but \(ranks) rank\(ranks == 1 ? "" : "s") × tensor-parallel-size \(tensorParallel) need \(needed)")
            }
            // Taken as given: the GPUs are only queried for their bus ids, to find their
            // NUMA nodes for `--numa-bind auto`; a failed query leaves them unknown.
            let gpus = needBusIDs ? GPUDiscovery.discover(system) : []
            entries = devices.map { GPUEntry(entry: $0, busID: GPUDiscovery.busID(of: $0, among: gpus)) }
        } else {
            let gpus = GPUDiscovery.discover(system)
            if gpus.isEmpty { return nil }
            guard gpus.count >= needed else {
                throw PlanningError("this host has \(gpus.count) GPU\(gpus.count == 1 ? "" : "s") but \(ranks) rank\(ranks == 1 ? "" : "s") × tensor-parallel-size \(tensorParallel) need \(needed)")
            }
            entries = gpus.prefix(needed).map { GPUEntry(entry: String($0.index), busID: $0.pciBusID) }
        }
        return (0..<ranks).map { Array(entries[$0 * tensorParallel..<($0 + 1) * tensorParallel]) }
    }

    private func resolveWorkerBinary(_ given: String?) throws(PlanningError) -> String {
        let path = given ?? URL(fileURLWithPath: executablePath).deletingLastPathComponent().appendingPathComponent("api-server").path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw PlanningError("worker binary \(path) does not exist\(given == nil ? " (set it with --worker-binary)" : "")")
        }
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw PlanningError("worker binary \(path) is not executable")
        }
        return path
    }

    private static func seconds(_ value: Double, _ flag: String, allowZero: Bool) throws(PlanningError) -> Duration {
        guard value.isFinite, allowZero ? value >= 0 : value > 0 else {
            throw PlanningError("\(flag) must be a number of seconds \(allowZero ? ">= 0" : "> 0"), got \(value)")
        }
        // Whole nanoseconds, so 0.2 means exactly 200 ms.
        return .nanoseconds(Int64((value * 1e9).rounded()))
    }

    private static func atLeast(_ value: Int, _ minimum: Int, _ flag: String) throws(PlanningError) {
        guard value >= minimum else { throw PlanningError("\(flag) must be at least \(minimum), got \(value)") }
    }

    static func healthSettings(_ options: SupervisorOptions) throws(PlanningError) -> HealthSettings {
        try atLeast(options.healthFailureThreshold, 1, "--health-failure-threshold")
        return HealthSettings(startupGrace: try seconds(options.startupGrace, "--startup-grace", allowZero: true),
                              interval: try seconds(options.healthInterval, "--health-interval", allowZero: false),
                              timeout: try seconds(options.healthTimeout, "--health-timeout", allowZero: false),
                              failureThreshold: options.healthFailureThreshold)
    }

    static func restartSettings(_ options: SupervisorOptions) throws(PlanningError) -> RestartSettings {
        let initial = try seconds(options.restartBackoff, "--restart-backoff", allowZero: true)
        let maximum = try seconds(options.restartBackoffMax, "--restart-backoff-max", allowZero: true)
        guard maximum >= initial else {
            throw PlanningError("--restart-backoff-max (\(options.restartBackoffMax)) must not be below --restart-backoff (\(options.restartBackoff))")
        }
        guard options.restartBackoffMultiplier.isFinite, options.restartBackoffMultiplier >= 1 else {
            throw PlanningError("--restart-backoff-multiplier must be at least 1, got \(options.restartBackoffMultiplier)")
        }
        guard options.restartJitter.isFinite, options.restartJitter >= 0, options.restartJitter < 1 else {
            throw PlanningError("--restart-jitter must be from 0 up to (not including) 1, got \(options.restartJitter)")
        }
        try atLeast(options.crashLoopRestarts, 1, "--crash-loop-restarts")
        return RestartSettings(initialBackoff: initial, maxBackoff: maximum, multiplier: options.restartBackoffMultiplier,
                               jitter: options.restartJitter, crashLoopDeaths: options.crashLoopRestarts,
                               crashLoopWindow: try seconds(options.crashLoopWindow, "--crash-loop-window", allowZero: false),
                               stablePeriod: try seconds(options.stablePeriod, "--stable-period", allowZero: true))
    }

    static func checkLogs(_ options: SupervisorOptions) throws(PlanningError) {
        try atLeast(options.logMaxBytes, 4096, "--log-max-bytes")
        try atLeast(options.logBackups, 0, "--log-backups")
        if options.logDir.isEmpty { throw PlanningError("--log-dir must not be empty") }
    }
}
