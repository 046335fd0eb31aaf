import ArgumentParser
import SplitwiseScheduler

/// FastDeploy's `--scheduler-name`: where requests are scheduled.
public enum SchedulerName: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// This instance serves the requests it receives (behind a router, or alone).
    case local
    /// Instances share a Redis: any instance's port takes requests, placed cluster-wide.
    case splitwise
}

/// `api-server`'s flags for FastDeploy's splitwise scheduler (same names, units and defaults).
public struct SchedulerOptions: ParsableArguments {
    @Option(help: "Where requests are scheduled: local (this instance serves what it receives) or splitwise (instances share a Redis; any instance's port takes requests, placed on a prefill and a decode instance, or a mixed one, anywhere in the cluster).")
    var schedulerName = SchedulerName.local

    @Option(help: "Redis host of the splitwise scheduler.")
    var schedulerHost = "127.0.0.1"

    @Option(help: "Redis port of the splitwise scheduler.")
    var schedulerPort = 6379

    @Option(help: "Redis database number of the splitwise scheduler.")
    var schedulerDb = 0

    @Option(help: "Redis password of the splitwise scheduler (AUTH). Default: none.")
    var schedulerPassword: String?

    @Option(help: "Scheduler topic: instances see each other only within one topic (the Redis hash {topic}.cluster).")
    var schedulerTopic = "fd"

    @Option(help: "Seconds a request may wait for its result before it fails with an error.")
    var schedulerTtl = 900

    @Option(help: "Milliseconds between two publications of this instance's load in the cluster hash (and reads of the cluster).")
    var schedulerSyncPeriod = 5

    @Option(help: "Milliseconds after its last publication that an instance counts as dead: it is no longer chosen and its queued requests go elsewhere.")
    var schedulerExpirePeriod = 3000

    @Option(help: "Seconds after which a request still counted in this instance's load is dropped from it.")
    var schedulerReleaseLoadExpirePeriod = 600

    public init() {}

    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw ValidationError(message) } }
        try check((1...65535).contains(schedulerPort), "--scheduler-port must be a port number (1-65535)")
        try check(schedulerDb >= 0, "--scheduler-db must be 0 or more")
        try check(!schedulerTopic.isEmpty, "--scheduler-topic must not be empty")
        try check(schedulerTtl >= 1, "--scheduler-ttl must be at least 1 second")
        try check(schedulerSyncPeriod >= 1, "--scheduler-sync-period must be at least 1 ms")
        try check(schedulerExpirePeriod > schedulerSyncPeriod, "--scheduler-expire-period must be longer than --scheduler-sync-period")
        try check(schedulerReleaseLoadExpirePeriod >= 1, "--scheduler-release-load-expire-period must be at least 1 second")
    }

    var settings: SchedulerSettings {
        SchedulerSettings(address: RedisAddress(host: schedulerHost, port: schedulerPort, db: schedulerDb, password: schedulerPassword),
                          topic: schedulerTopic, ttl: .seconds(schedulerTtl), syncPeriod: .milliseconds(schedulerSyncPeriod),
                          expirePeriod: .milliseconds(schedulerExpirePeriod),
                          releaseLoadExpirePeriod: .seconds(schedulerReleaseLoadExpirePeriod))
    }

    /// Start-up's message for a Redis that cannot serve as the scheduler's (exit 78).
    static func startupProblem(_ error: RedisError, address: RedisAddress) -> String {
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
