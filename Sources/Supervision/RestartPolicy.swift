import FleetPlanning
import SystemCalls

/// What to do after a rank died: restart it after a delay, or give up on it.
public enum RestartDecision: Equatable, Sendable {
    case restart(after: Duration)
    case markFailed(reason: String)
}

/// One rank's restart bookkeeping: exponential backoff with jitter, crash-loop detection
/// over a sliding window, and a backoff reset after a stable period.
public struct RestartPolicy: Sendable {
    public let settings: RestartSettings
    /// Deaths since the last reset (drives the backoff exponent).
    public private(set) var consecutiveDeaths = 0
    /// When each recent death happened (drives crash-loop detection).
    private var deaths: [ContinuousClock.Instant] = []

    public init(settings: RestartSettings) {
        self.settings = settings
    }

    /// Records a death at `now` and decides. `random` yields values in [0, 1) for the jitter.
    public mutating func recordDeath(at now: ContinuousClock.Instant, exitStatus: Int?,
                                     random: () -> Double = { Double.random(in: 0..<1) }) -> RestartDecision {
        if exitStatus == 78 {
            return .markFailed(reason: "exit status 78 (bad configuration): not restarted")
        }
        deaths.append(now)
        deaths.removeAll { now - $0 > settings.crashLoopWindow }
        if deaths.count >= settings.crashLoopDeaths {
            return .markFailed(reason: "crash loop: \(deaths.count) deaths within \(seconds(settings.crashLoopWindow))")
        }
        let delay = backoff(attempt: consecutiveDeaths, random: random)
        consecutiveDeaths += 1
        return .restart(after: delay)
    }

    /// The rank stayed healthy for the stable period: the next death starts from the
    /// initial backoff again.
    public mutating func resetBackoff() {
        consecutiveDeaths = 0
    }

    /// initial × multiplier^attempt, capped at the maximum, then ± jitter.
    public func backoff(attempt: Int, random: () -> Double) -> Duration {
        var delay = settings.initialBackoff
        for _ in 0..<attempt where delay < settings.maxBackoff {
            delay = delay * settings.multiplier
        }
        delay = min(delay, settings.maxBackoff)
        let factor = 1 + settings.jitter * (2 * random() - 1)
        return max(.zero, delay * factor)
    }
}

/// "8s", "0.5s".
func seconds(_ duration: Duration) -> String {
    let value = duration.inSeconds
    if value == value.rounded() { return "\(Int(value))s" }
    return "\((value * 10).rounded() / 10)s"
}
