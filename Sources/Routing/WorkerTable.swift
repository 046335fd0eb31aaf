import PDProtocol
import Synchronization

/// What a policy sees of one worker.
public struct WorkerSnapshot: Sendable, Equatable {
    public var registration: WorkerRegistration { didSet { url = registration.url } }
    /// `registration.url`, made once: the relay reads it several times per request.
    public private(set) var url: String
    /// Requests the router has in flight on it now.
    public var inFlight: Int
    /// The last `/load` the health checker read (nil before the first).
    public var load: InstanceLoad?

    public init(registration: WorkerRegistration, inFlight: Int = 0, load: InstanceLoad? = nil) {
        self.init(url: registration.url, registration: registration, inFlight: inFlight, load: load)
    }

    init(url: String, registration: WorkerRegistration, inFlight: Int, load: InstanceLoad?) {
        self.url = url
        self.registration = registration
        self.inFlight = inFlight
        self.load = load
    }

    public var role: SplitwiseRole { registration.role }
}

/// One row of `GET /workers`.
public struct WorkerStatus: Codable, Sendable, Equatable {
    public var url: String
    public var role: SplitwiseRole
    public var model: String
    public var source: WorkerSource
    public var healthy: Bool
    public var circuitBreaker: String
    public var inFlight: Int
    public var load: InstanceLoad?

    enum CodingKeys: String, CodingKey {
        case url, role, model, source, healthy, load
        case circuitBreaker = "circuit_breaker"
        case inFlight = "in_flight"
    }
}

/// How a worker got into the table.
public enum WorkerSource: String, Codable, Sendable {
    /// `POST /register` (a heartbeat keeps it fresh).
    case registered
    /// `--prefill`, `--decode`, `--worker-urls`, `--cluster-config`, `POST /workers`.
    case configured
    /// Found in the splitwise scheduler's cluster hash (`--scheduler-name splitwise`).
    case scheduler
}

/// The router's workers: registrations, health, circuit breakers, in-flight counts and loads.
/// Only routable workers (health passed, breaker not open) are offered to the policies.
public final class WorkerTable: Sendable {
    struct Entry {
        var registration: WorkerRegistration
        var source: WorkerSource
        var health: HealthThresholds
        var breaker: CircuitBreaker
        var inFlight = 0
        var load: InstanceLoad?
    }

    public enum Change: Equatable, Sendable {
        case joined(String)
        case left(String)
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let healthSettings: (failure: Int, success: Int)
    private let breakerSettings: CircuitBreaker.Settings

    public init(failureThreshold: Int = 3, successThreshold: Int = 2, breaker: CircuitBreaker.Settings = .init()) {
        healthSettings = (failureThreshold, successThreshold)
        breakerSettings = breaker
    }

    /// Adds a worker or refreshes a known one. `admitted`: its `/health` just answered 200, so it
    /// is routable at once; otherwise it joins on its first passed health check.
    @discardableResult
    public func upsert(_ registration: WorkerRegistration, source: WorkerSource, admitted: Bool) -> RegistrationReply.Status {
        entries.withLock { entries in
            if var entry = entries[registration.url] {
                entry.registration = registration
                if admitted && !entry.health.routable && entry.health.consecutiveFailures == 0 { entry.health.admit() }
                entries[registration.url] = entry
                return .refreshed
            }
            var health = HealthThresholds(failureThreshold: healthSettings.failure, successThreshold: healthSettings.success)
            if admitted { health.admit() }
            entries[registration.url] = Entry(registration: registration, source: source, health: health,
                                              breaker: CircuitBreaker(settings: breakerSettings))
            return .registered
        }
    }

    public func contains(_ url: String) -> Bool { entries.withLock { $0[url] != nil } }

    @discardableResult
    public func remove(_ url: String) -> Bool { entries.withLock { $0.removeValue(forKey: url) != nil } }

    /// Routable workers of `role` at `now`, sorted by URL.
    public func candidates(role: SplitwiseRole, at now: ContinuousClock.Instant) -> [WorkerSnapshot] {
        entries.withLock { entries in
            entries.compactMap { url, entry in
                entry.registration.role == role && entry.health.routable && entry.breaker.isAvailable(at: now)
                    ? WorkerSnapshot(url: url, registration: entry.registration, inFlight: entry.inFlight, load: entry.load) : nil
            }
        }.sorted { $0.url < $1.url }
    }

    /// Claims `url` for one request: counts it in flight, and takes the half-open breaker's trial
    /// slot when there is one. False when the breaker refuses (another request took the trial).
    public func begin(_ url: String, at now: ContinuousClock.Instant) -> Bool {
        entries.withLock { entries in
            guard var entry = entries[url], entry.breaker.allowRequest(at: now) else { return false }
            entry.inFlight += 1
            entries[url] = entry
            return true
        }
    }

    /// Ends a request `begin` counted; `success: nil` when its outcome says nothing about the
    /// worker (the client went away).
    public func end(_ url: String, success: Bool?, at now: ContinuousClock.Instant) {
        entries.withLock { entries in
            guard var entry = entries[url] else { return }
            entry.inFlight -= 1
            switch success {
            case true?: entry.breaker.recordSuccess()
            case false?: entry.breaker.recordFailure(at: now)
            case nil: break
            }
            entries[url] = entry
        }
    }

    /// Records a health check; returns the routability change it caused.
    public func recordHealth(_ url: String, healthy: Bool, load: InstanceLoad?) -> Change? {
        entries.withLock { entries in
            guard var entry = entries[url] else { return nil }
            let transition = entry.health.record(healthy: healthy)
            if let load { entry.load = load }
            entries[url] = entry
            switch transition {
            case .joined?: return .joined(url)
            case .left?: return .left(url)
            case nil: return nil
            }
        }
    }

    public func registrations() -> [WorkerRegistration] {
        entries.withLock { $0.values.map(\.registration) }.sorted { $0.url < $1.url }
    }

    public func registration(_ url: String) -> WorkerRegistration? { entries.withLock { $0[url]?.registration } }

    public func statuses(at now: ContinuousClock.Instant) -> [WorkerStatus] {
        entries.withLock { entries in
            entries.values.map {
                WorkerStatus(url: $0.registration.url, role: $0.registration.role, model: $0.registration.model, source: $0.source,
                             healthy: $0.health.routable, circuitBreaker: $0.breaker.state(at: now).rawValue,
                             inFlight: $0.inFlight, load: $0.load)
            }
        }.sorted { $0.url < $1.url }
    }
}
