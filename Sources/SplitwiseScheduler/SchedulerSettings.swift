/// The splitwise scheduler's settings (`--scheduler-*`, FastDeploy's flags and defaults).
public struct SchedulerSettings: Sendable {
    public var address: RedisAddress
    /// Instances see each other only within one topic (`{topic}.cluster`).
    public var topic: String
    /// How long a request may wait for its result before it fails (and a queued leg is dropped).
    public var ttl: Duration
    /// How often an instance publishes its entry and reads the cluster.
    public var syncPeriod: Duration
    /// An instance whose entry is older than this is never chosen, and its queue is rescued.
    public var expirePeriod: Duration
    /// A leg this instance has counted in its load for longer than this is dropped from it.
    public var releaseLoadExpirePeriod: Duration
    /// Bounds every Redis command (connect, read, write), so a stopped Redis is an error.
    public var commandTimeout: Duration
    /// How many times a request is placed in all (a failure before any output is tried again).
    public var maxAttempts: Int

    public init(address: RedisAddress, topic: String = "fd", ttl: Duration = .seconds(900), syncPeriod: Duration = .milliseconds(5),
                expirePeriod: Duration = .milliseconds(3000), releaseLoadExpirePeriod: Duration = .seconds(600),
                commandTimeout: Duration = .seconds(2), maxAttempts: Int = 3) {
        self.address = address
        self.topic = topic
        self.ttl = ttl
        self.syncPeriod = syncPeriod
        self.expirePeriod = expirePeriod
        self.releaseLoadExpirePeriod = releaseLoadExpirePeriod
        self.commandTimeout = commandTimeout
        self.maxAttempts = maxAttempts
    }

    /// Entries older than this are deleted from the cluster hash (FastDeploy: 60 s).
    var clearExpiredNodesPeriod: Duration { max(.seconds(60), expirePeriod * 10) }
}

/// FastDeploy's Redis key names.
public enum SchedulerKeys {
    /// The hash of instances: field = node id, value = `SchedulerNodeInfo` JSON.
    public static func cluster(topic: String) -> String { "\(topic).cluster" }
    /// A node's request list: the receiving instance LPUSHes, the node RPOPs (FIFO).
    public static func requests(node: String) -> String { "ReqQ_\(node)" }
    /// The result list a receiving instance reads (FastDeploy's reader group `{node id}-{reader}`).
    public static func results(node: String) -> String { "\(node)-0" }
}

extension Duration {
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }
}
