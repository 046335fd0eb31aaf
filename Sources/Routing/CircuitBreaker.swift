/// A per-worker circuit breaker over request outcomes (health checks are separate):
/// `failureThreshold` consecutive failed requests open it for `openDuration`, during which the
/// worker gets no requests; then it is half-open and lets one trial request through at a time;
/// `successThreshold` successes close it, a failure opens it again. Every decision takes the
/// time as an argument.
public struct CircuitBreaker: Sendable {
    public enum State: String, Equatable, Sendable {
        case closed, open, halfOpen = "half_open"
        /// For the `router_circuit_breaker_state` gauge: 0 closed, 1 open, 2 half-open.
        public var gaugeValue: Double {
            switch self {
            case .closed: 0
            case .open: 1
            case .halfOpen: 2
            }
        }
    }

    public struct Settings: Sendable {
        public var failureThreshold: Int
        public var successThreshold: Int
        public var openDuration: Duration

        public init(failureThreshold: Int = 5, successThreshold: Int = 2, openDuration: Duration = .seconds(10)) {
            self.failureThreshold = max(1, failureThreshold)
            self.successThreshold = max(1, successThreshold)
            self.openDuration = openDuration
        }
    }

    public let settings: Settings
    public private(set) var state: State = .closed
    private var consecutiveFailures = 0
    private var halfOpenSuccesses = 0
    private var openedAt: ContinuousClock.Instant?
    private var trialInFlight = false

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    /// The state at `now` (an open breaker whose time is up reads half-open).
    public func state(at now: ContinuousClock.Instant) -> State {
        if state == .open, let openedAt, now - openedAt >= settings.openDuration { return .halfOpen }
        return state
    }

    /// Whether a request may go to the worker now; a half-open breaker admits one trial at a time.
    public mutating func allowRequest(at now: ContinuousClock.Instant) -> Bool {
        switch state(at: now) {
        case .closed:
            return true
        case .open:
            return false
        case .halfOpen:
            if state == .open {
                state = .halfOpen
                halfOpenSuccesses = 0
                trialInFlight = false
            }
            guard !trialInFlight else { return false }
            trialInFlight = true
            return true
        }
    }

    /// Whether the worker could take a request now, without claiming a half-open trial.
    public func isAvailable(at now: ContinuousClock.Instant) -> Bool {
        switch state(at: now) {
        case .closed: true
        case .open: false
        case .halfOpen: !trialInFlight || state == .open
        }
    }

    public mutating func recordSuccess() {
        consecutiveFailures = 0
        if state == .halfOpen {
            trialInFlight = false
            halfOpenSuccesses += 1
            if halfOpenSuccesses >= settings.successThreshold {
                state = .closed
                openedAt = nil
            }
        }
    }

    public mutating func recordFailure(at now: ContinuousClock.Instant) {
        switch state {
        case .halfOpen:
            open(at: now)
        case .closed:
            consecutiveFailures += 1
            if consecutiveFailures >= settings.failureThreshold { open(at: now) }
        case .open:
            break
        }
    }

    private mutating func open(at now: ContinuousClock.Instant) {
        state = .open
        openedAt = now
        trialInFlight = false
        halfOpenSuccesses = 0
        consecutiveFailures = 0
    }
}
