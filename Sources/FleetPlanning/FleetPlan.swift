import PDProtocol

// The contract between planning (this module: pure, testable without processes) and
// running (the Supervision module). A plan is complete: every rank's devices, CPUs, NUMA
// nodes, ports, command line and environment are decided before any worker starts.

/// The kinds of port a deployment uses on one host. Every port of every kind, rank and the
/// supervisor itself must be distinct.
public enum PortKind: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case api
    case metrics
    case engineWorkerQueue = "engine-worker-queue"
    case cacheQueue = "cache-queue"
    case pdComm = "pd-comm"
    case rdmaComm = "rdma-comm"
    case control

    public var description: String { rawValue }
}

/// One rank's ports: one of each kind, and one RDMA port per device of the rank.
public struct RankPorts: Sendable, Equatable, Codable {
    public var api: Int
    public var metrics: Int
    public var engineWorkerQueue: Int
    public var cacheQueue: Int
    public var pdComm: Int
    public var rdmaComm: [Int]

    public init(api: Int, metrics: Int, engineWorkerQueue: Int, cacheQueue: Int, pdComm: Int, rdmaComm: [Int]) {
        self.api = api
        self.metrics = metrics
        self.engineWorkerQueue = engineWorkerQueue
        self.cacheQueue = cacheQueue
        self.pdComm = pdComm
        self.rdmaComm = rdmaComm
    }
}

/// Everything needed to start (and restart, identically) one data-parallel rank.
public struct RankPlan: Sendable, Equatable, Codable {
    public var rank: Int
    /// This rank's `CUDA_VISIBLE_DEVICES` entries (indices, `GPU-…` or `MIG-…` ids); empty in CPU mode.
    public var devices: [String]
    /// CPUs the worker is pinned to; nil leaves the inherited affinity alone.
    public var cpus: [Int]?
    /// NUMA nodes the worker's memory is bound to; nil means no binding.
    public var numaNodes: [Int]?
    public var ports: RankPorts
    /// The worker's arguments (after the binary path).
    public var arguments: [String]
    /// Variables set for the worker on top of the supervisor's environment (from which
    /// `NOTIFY_SOCKET` and `LISTEN_*` are removed at spawn time).
    public var environment: [String: String]
    /// This rank's own log folder (`<log-dir>/log_<rank>`).
    public var logDirectory: String

    public init(rank: Int, devices: [String], cpus: [Int]?, numaNodes: [Int]?, ports: RankPorts,
                arguments: [String], environment: [String: String], logDirectory: String) {
        self.rank = rank
        self.devices = devices
        self.cpus = cpus
        self.numaNodes = numaNodes
        self.ports = ports
        self.arguments = arguments
        self.environment = environment
        self.logDirectory = logDirectory
    }
}

public struct HealthSettings: Sendable, Equatable, Codable {
    /// How long a (re)started rank may take to load before failed probes count.
    public var startupGrace: Duration
    public var interval: Duration
    public var timeout: Duration
    /// Consecutive failed probes after which a rank is declared unhealthy and replaced.
    public var failureThreshold: Int

    public init(startupGrace: Duration, interval: Duration, timeout: Duration, failureThreshold: Int) {
        self.startupGrace = startupGrace
        self.interval = interval
        self.timeout = timeout
        self.failureThreshold = failureThreshold
    }
}

public struct RestartSettings: Sendable, Equatable, Codable {
    public var initialBackoff: Duration
    public var maxBackoff: Duration
    public var multiplier: Double
    /// Fraction of the backoff added or removed at random (0.2 = ±20%).
    public var jitter: Double
    /// A rank that dies `crashLoopDeaths` times within `crashLoopWindow` is marked failed.
    public var crashLoopDeaths: Int
    public var crashLoopWindow: Duration
    /// A rank that stays healthy this long has its backoff reset.
    public var stablePeriod: Duration

    public init(initialBackoff: Duration, maxBackoff: Duration, multiplier: Double, jitter: Double,
                crashLoopDeaths: Int, crashLoopWindow: Duration, stablePeriod: Duration) {
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.multiplier = multiplier
        self.jitter = jitter
        self.crashLoopDeaths = crashLoopDeaths
        self.crashLoopWindow = crashLoopWindow
        self.stablePeriod = stablePeriod
    }
}

/// The router the ranks register with (`--router`), as the supervisor reaches it to take a
/// rank out before it kills, restarts or stops it.
public struct RouterSettings: Sendable, Equatable, Codable {
    /// `http://host:port` of the router.
    public var baseURL: String
    /// Sent as `Authorization: Bearer <token>`.
    public var token: String?
    /// The host the ranks register under: their `--host`, a wildcard resolved the way the
    /// worker resolves it.
    public var workerHost: String

    public init(baseURL: String, token: String?, workerHost: String) {
        self.baseURL = baseURL
        self.token = token
        self.workerHost = workerHost
    }

    /// The URL the rank with this API port is registered under.
    public func workerURL(apiPort: Int) -> String { PeerEndpoint(host: workerHost, port: apiPort).url }
}

/// A whole deployment on this host, ready to run.
public struct FleetPlan: Sendable, Equatable, Codable {
    public var workerBinary: String
    public var ranks: [RankPlan]
    /// The supervisor's own HTTP port (`/health`, `/ranks`, `/metrics`).
    public var controlPort: Int
    public var logDirectory: String
    /// Size at which a rank's log file is rotated, and how many rotated files are kept.
    public var logMaxBytes: Int
    public var logBackups: Int
    public var health: HealthSettings
    public var restart: RestartSettings
    public var shutdownTimeout: Duration
    /// The IPv4 address the ports were checked on and health probes go to (`--host`).
    public var host: String
    /// The router the ranks register with; nil when none.
    public var router: RouterSettings?

    public init(workerBinary: String, ranks: [RankPlan], controlPort: Int, logDirectory: String,
                logMaxBytes: Int, logBackups: Int, health: HealthSettings, restart: RestartSettings,
                shutdownTimeout: Duration, host: String = "127.0.0.1", router: RouterSettings? = nil) {
        self.workerBinary = workerBinary
        self.ranks = ranks
        self.controlPort = controlPort
        self.logDirectory = logDirectory
        self.logMaxBytes = logMaxBytes
        self.logBackups = logBackups
        self.health = health
        self.restart = restart
        self.shutdownTimeout = shutdownTimeout
        self.host = host
        self.router = router
    }
}
