import ArgumentParser
import SplitwiseScheduler

/// `api-server`'s flags for FastDeploy's splitwise scheduler (same names, units and defaults):
/// the cluster's (shared with the router) and those of requests placed through it.
public struct SchedulerOptions: ParsableArguments {
    @OptionGroup var cluster: SchedulerClusterOptions

    @Option(help: "Seconds a request may wait for its result before it fails with an error.")
    var schedulerTtl = 900

    @Option(help: "Seconds after which a request still counted in this instance's load is dropped from it.")
    var schedulerReleaseLoadExpirePeriod = 600

    public init() {}

    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw ValidationError(message) } }
        try check(schedulerTtl >= 1, "--scheduler-ttl must be at least 1 second")
        try check(schedulerReleaseLoadExpirePeriod >= 1, "--scheduler-release-load-expire-period must be at least 1 second")
    }

    var schedulerName: SchedulerName { cluster.schedulerName }

    var settings: SchedulerSettings {
        SchedulerSettings(address: cluster.address, topic: cluster.schedulerTopic, ttl: .seconds(schedulerTtl),
                          syncPeriod: cluster.syncPeriod, expirePeriod: cluster.expirePeriod,
                          releaseLoadExpirePeriod: .seconds(schedulerReleaseLoadExpirePeriod))
    }
}
