import FleetPlanning
import SystemCalls

/// Where a rank is in its life.
public enum RankPhase: String, Codable, Sendable {
    /// Spawned, not yet answering `/health` with 200.
    case starting
    case ready
    /// Failed its health checks; killed, waiting for the exit to be collected.
    case unhealthy
    /// Died; waits for its backoff before the restart.
    case backingOff = "backing-off"
    /// Given up on (crash loop, exit status 78): stays down, the others keep serving.
    case failed
    /// Asked to stop during shutdown.
    case stopping
    case stopped
}

/// One rank as `/ranks` and `/health` report it.
public struct RankStatus: Codable, Sendable, Equatable {
    public var rank: Int
    public var pid: Int?
    public var devices: [String]
    public var cpus: [Int]?
    public var numaNodes: [Int]?
    public var ports: RankPorts
    public var state: RankPhase
    public var restarts: Int
    /// "exit status 1", "signal 9 (SIGKILL)", with the supervisor's reason when it killed it.
    public var lastExit: String?
    /// Why it is failed, or the last failed health check.
    public var detail: String?
    /// Seconds until the restart, while backing off.
    public var restartInSeconds: Double?
    /// Why the rank's output is being dropped instead of written to its log file, while it is
    /// (the file could not be reopened after a rotation, or a write failed); retried on every
    /// write.
    public var logProblem: String?
}

/// Everything the supervisor tracks about one rank (owned by the Supervisor actor).
struct RankRuntime {
    let plan: RankPlan
    let log: RankLog
    var policy: RestartPolicy
    var phase: RankPhase = .starting
    var pid: Int32?
    /// Bumped on every spawn, so late probe results of an old incarnation are ignored.
    var incarnation = 0
    /// This incarnation's probes: startup grace, failure threshold, stable period.
    var health: HealthTracker
    var restartAt: ContinuousClock.Instant?
    var probeInFlight = false
    var nextProbeAt: ContinuousClock.Instant
    var killReason: String?
    var restarts = 0
    var lastExit: String?
    var detail: String?
    /// A deregistration from the router is in flight: the rank is not restarted until it ends.
    var leavingRouter = false
    /// This incarnation was taken out of the router (reset on every spawn: a new one registers).
    var outOfRouter = false
    /// The log problem last reported to the supervisor's own log (to report changes once).
    var reportedLogProblem: String?

    func status(now: ContinuousClock.Instant) -> RankStatus {
        var restartIn: Double?
        if phase == .backingOff, let at = restartAt {
            restartIn = max(0, (at - now).inSeconds)
        }
        return RankStatus(rank: plan.rank, pid: pid.map(Int.init), devices: plan.devices, cpus: plan.cpus,
                          numaNodes: plan.numaNodes, ports: plan.ports, state: phase, restarts: restarts,
                          lastExit: lastExit, detail: detail, restartInSeconds: restartIn, logProblem: log.problem)
    }
}
