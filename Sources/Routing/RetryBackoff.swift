/// Delay before retry `attempt` (0 for the first retry): initial × multiplier^attempt, capped
/// at the maximum, then scaled by a factor in [1 - jitter, 1 + jitter].
public struct RetryBackoff: Sendable {
    public var maxRetries: Int
    public var initial: Duration
    public var maximum: Duration
    public var multiplier: Double
    public var jitter: Double

    public init(maxRetries: Int = 3, initial: Duration = .milliseconds(50), maximum: Duration = .seconds(2),
                multiplier: Double = 2, jitter: Double = 0.2) {
        self.maxRetries = max(0, maxRetries)
        self.initial = initial
        self.maximum = maximum
        self.multiplier = max(1, multiplier)
        self.jitter = min(max(0, jitter), 1)
    }

    /// `random` yields values in [0, 1).
    public func delay(attempt: Int, random: () -> Double = { Double.random(in: 0..<1) }) -> Duration {
        var delay = initial
        for _ in 0..<max(0, attempt) where delay < maximum {
            delay = delay * multiplier
        }
        delay = min(delay, maximum)
        return max(.zero, delay * (1 + jitter * (2 * random() - 1)))
    }
}
