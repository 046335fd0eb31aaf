import FleetPlanning

/// One worker incarnation's health bookkeeping: failed probes inside the startup grace do
/// not count, `failureThreshold` consecutive counted failures make the rank unhealthy, and a
/// rank that has been ready for the whole stable period has earned a backoff reset. Every
/// decision takes the time as an argument, so each window is testable at its exact edge.
public struct HealthTracker: Sendable {
    /// What one probe result means.
    public enum Verdict: Equatable, Sendable {
        /// The first healthy answer of this incarnation.
        case becameReady
        case healthy
        /// Failed while still starting, inside the startup grace: not counted.
        case failedInGrace
        /// Failed and counted, still below the threshold.
        case failed(consecutive: Int)
        /// The failure that reached the threshold: the rank is to be replaced.
        case unhealthy(consecutive: Int)
    }

    public let settings: HealthSettings
    public let startedAt: ContinuousClock.Instant
    /// When this incarnation first answered healthy; nil while it is starting.
    public private(set) var readySince: ContinuousClock.Instant?
    public private(set) var consecutiveFailures = 0

    public init(settings: HealthSettings, startedAt: ContinuousClock.Instant) {
        self.settings = settings
        self.startedAt = startedAt
    }

    /// Records a probe that finished at `now`.
    public mutating func record(healthy: Bool, at now: ContinuousClock.Instant) -> Verdict {
        if healthy {
            consecutiveFailures = 0
            guard readySince == nil else { return .healthy }
            readySince = now
            return .becameReady
        }
        if readySince == nil && now - startedAt < settings.startupGrace { return .failedInGrace }
        consecutiveFailures += 1
        return consecutiveFailures >= settings.failureThreshold
            ? .unhealthy(consecutive: consecutiveFailures) : .failed(consecutive: consecutiveFailures)
    }

    /// Whether the incarnation has been ready for at least `stablePeriod` at `now`.
    public func isStable(at now: ContinuousClock.Instant, stablePeriod: Duration) -> Bool {
        guard let readySince else { return false }
        return now - readySince >= stablePeriod
    }
}
