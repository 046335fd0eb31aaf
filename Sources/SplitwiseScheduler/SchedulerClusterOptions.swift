import ArgumentParser

/// FastDeploy's `--scheduler-name`: where requests are scheduled.
public enum SchedulerName: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// This instance serves the requests it receives (behind a router, or alone); a router
    /// knows its workers by registration or flags.
    case local
    /// Instances share a Redis: any instance's port takes requests, placed cluster-wide; a
    /// router finds its workers in the cluster hash.
    case splitwise
}

/// The splitwise scheduler's flags that say which cluster to join or read (FastDeploy's names,
/// units and defaults): shared by `api-server` and `router`.
public struct SchedulerClusterOptions: ParsableArguments {
    @Option(help: "Where requests are scheduled: local (api-server: this instance serves what it receives; router: workers register or are given by flags) or splitwise (instances share a Redis; any instance's port takes requests, placed on a prefill and a decode instance, or a mixed one, anywhere in the cluster; the router finds its workers there).")
    public var schedulerName = SchedulerName.local

    @Option(help: "Redis host of the splitwise scheduler.")
    public var schedulerHost = "127.0.0.1"

    @Option(help: "Redis port of the splitwise scheduler.")
    public var schedulerPort = 6379

    @Option(help: "Redis database number of the splitwise scheduler.")
    public var schedulerDb = 0

    @Option(help: "Redis password of the splitwise scheduler (AUTH). Default: none.")
    public var schedulerPassword: String?

    @Option(help: "Scheduler topic: instances see each other only within one topic (the Redis hash {topic}.cluster).")
    public var schedulerTopic = "fd"

    @Option(help: "Milliseconds between two publications of an instance's load in the cluster hash (and reads of the cluster).")
    public var schedulerSyncPeriod = 5

    @Option(help: "Milliseconds after its last publication that an instance counts as dead: it is no longer chosen (nor routed to) and its queued requests go elsewhere.")
    public var schedulerExpirePeriod = 3000

    public init() {}

    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw ValidationError(message) } }
        try check((1...65535).contains(schedulerPort), "--scheduler-port must be a port number (1-65535)")
        try check(schedulerDb >= 0, "--scheduler-db must be 0 or more")
        try check(!schedulerTopic.isEmpty, "--scheduler-topic must not be empty")
        try check(schedulerSyncPeriod >= 1, "--scheduler-sync-period must be at least 1 ms")
        try check(schedulerExpirePeriod > schedulerSyncPeriod, "--scheduler-expire-period must be longer than --scheduler-sync-period")
    }

    public var address: RedisAddress {
        RedisAddress(host: schedulerHost, port: schedulerPort, db: schedulerDb, password: schedulerPassword)
    }

    public var syncPeriod: Duration { .milliseconds(schedulerSyncPeriod) }
    public var expirePeriod: Duration { .milliseconds(schedulerExpirePeriod) }

    /// Start-up's message for a Redis that cannot serve as the scheduler's (exit 78).
    public static func startupProblem(_ error: RedisError, address: RedisAddress) -> String {
        switch error {
        case .unreachable(let why):
            return "--scheduler-host/--scheduler-port: cannot reach Redis at \(address.description): \(why)"
        case .server(let message) where message.hasPrefix("WRONGPASS") || message.hasPrefix("ERR AUTH") || message.hasPrefix("ERR invalid password"):
            return "--scheduler-password: Redis at \(address.description) refused the password: \(message)"
        case .server(let message) where message.hasPrefix("NOAUTH"):
            return "--scheduler-password: Redis at \(address.description) requires a password: \(message)"
        case .server(let message):
            return "Redis at \(address.description) refused the scheduler: \(message)"
        case .unsupportedVersion:
            return "\(error) at \(address.description)"
        }
    }
}
