/// One worker's health-check bookkeeping: `failureThreshold` consecutive failed checks take a
/// routable worker out of the table, `successThreshold` consecutive passed checks bring it
/// back. A new worker (registered or static) joins on its first passed check: registration
/// already required a 200 from `/health`.
public struct HealthThresholds: Sendable {
    public enum Transition: Equatable, Sendable {
        case joined
        case left
    }

    public let failureThreshold: Int
    public let successThreshold: Int
    public private(set) var routable = false
    public private(set) var consecutiveFailures = 0
    public private(set) var consecutiveSuccesses = 0
    private var everHealthy = false

    public init(failureThreshold: Int = 3, successThreshold: Int = 2) {
        self.failureThreshold = max(1, failureThreshold)
        self.successThreshold = max(1, successThreshold)
    }

    /// Records one check; returns the change of routability it causes, if any.
    public mutating func record(healthy: Bool) -> Transition? {
        if healthy {
            consecutiveFailures = 0
            consecutiveSuccesses += 1
            guard !routable else { return nil }
            if !everHealthy || consecutiveSuccesses >= successThreshold {
                everHealthy = true
                routable = true
                return .joined
            }
            return nil
        }
        consecutiveSuccesses = 0
        consecutiveFailures += 1
        if routable && consecutiveFailures >= failureThreshold {
            routable = false
            return .left
        }
        return nil
    }

    /// The worker answered a registration's health check: routable at once.
    public mutating func admit() {
        everHealthy = true
        routable = true
        consecutiveFailures = 0
    }
}
