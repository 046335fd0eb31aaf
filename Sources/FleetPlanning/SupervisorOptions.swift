import ArgumentParser

/// The command line of `multi-api-server`, compatible with FastDeploy's `multi_api_server`
/// (`--num-servers --ports --metrics-ports --args …`) plus the supervisor's own settings.
/// Durations are seconds (decimals allowed). Semantic checks happen in `FleetPlanner`, so
/// every planning error has one type and one exit status.
public struct SupervisorOptions: ParsableArguments {
    @Option(help: "Number of data-parallel ranks (API servers) to run. Default: --data-parallel-size from the worker flags, else the number of --ports, else 1.")
    public var numServers: Int?

    @Option(help: "API ports, one per rank, comma separated (e.g. 8000,8001). Default: free ports chosen by the kernel.")
    public var ports: String?

    @Option(help: "Metrics ports, one per rank, comma separated. Default: free ports.")
    public var metricsPorts: String?

    @Option(help: "The worker program started once per rank. Default: api-server in the same folder as multi-api-server.")
    public var workerBinary: String?

    @Option(help: "Port of the supervisor's own HTTP endpoint (/health, /ranks, /metrics). Default: a free port.")
    public var controlPort: Int?

    @Option(help: "Log folder; rank i logs to <log-dir>/log_<i> (FastDeploy's FD_LOG_DIR).")
    public var logDir: String = "log"

    @Option(help: "Address the workers' ports are checked on and health probes are sent to.")
    public var host: String = "127.0.0.1"

    @Option(help: "Seconds a (re)started rank may take to load before failed health probes count.")
    public var startupGrace: Double = 120

    @Option(help: "Seconds between health probes of each rank.")
    public var healthInterval: Double = 1

    @Option(help: "Seconds a health probe may take before it counts as failed.")
    public var healthTimeout: Double = 1

    @Option(help: "Consecutive failed health probes after which a rank is replaced.")
    public var healthFailureThreshold: Int = 3

    @Option(help: "Seconds to wait before the first restart of a failed rank.")
    public var restartBackoff: Double = 0.5

    @Option(help: "Longest wait in seconds between restarts of a rank.")
    public var restartBackoffMax: Double = 30

    @Option(help: "Factor the restart wait grows by after each consecutive failure.")
    public var restartBackoffMultiplier: Double = 2

    @Option(help: "Fraction of the restart wait added or removed at random (0.2 = ±20%).")
    public var restartJitter: Double = 0.2

    @Option(help: "A rank that dies this many times within --crash-loop-window is marked failed and no longer restarted.")
    public var crashLoopRestarts: Int = 5

    @Option(help: "Seconds over which deaths are counted for --crash-loop-restarts.")
    public var crashLoopWindow: Double = 60

    @Option(help: "Seconds a rank must stay healthy for its restart wait to go back to --restart-backoff.")
    public var stablePeriod: Double = 30

    @Option(help: "Seconds the workers get after SIGTERM before they are killed.")
    public var shutdownTimeout: Double = 10

    @Option(help: "Size in bytes at which a rank's log file is rotated.")
    public var logMaxBytes: Int = 64 << 20

    @Option(help: "Number of rotated log files kept per rank.")
    public var logBackups: Int = 5

    @Option(help: "Router the ranks register with (HOST:PORT or http://HOST:PORT), passed to every rank as --router; the supervisor takes a rank out of it (POST /deregister) before it kills, restarts or stops the rank. Default: the --router among the worker flags, else none.")
    public var router: String?

    @Option(help: "Token for the router's --register-token; given to the ranks as TANDEM_REGISTER_TOKEN, never on their command line. Default: $TANDEM_REGISTER_TOKEN.")
    public var registerToken: String?

    @Option(help: "NUMA binding of each rank's CPUs and memory: auto (GPU mode: its GPUs' node; CPU mode: ranks spread across nodes), none, or node numbers (one per rank, or one for all).")
    public var numaBind: String = "auto"

    @Option(parsing: .remaining, help: ArgumentHelp(
        "Worker flags: everything after --args is passed to every worker. Comma lists of --engine-worker-queue-port, --cache-queue-port, --pd-comm-port (one per rank) and --rdma-comm-ports (one per device) are split per rank.",
        valueName: "worker flags"))
    public var args: [String] = []

    /// Worker flags given before `--args` (anything the supervisor does not know itself).
    @Argument(parsing: .allUnrecognized, help: .hidden)
    public var unrecognizedWorkerFlags: [String] = []

    public init() {}

    /// All worker flags, those before `--args` first.
    public var workerFlags: [String] { unrecognizedWorkerFlags + args }
}
