import Foundation

/// How long a test waits for something that should happen before it gives up: only a bound on
/// a wait for what never comes, generous for a loaded machine, never a measure of speed (speed
/// belongs in benchmarks).
public let patience: Duration = .seconds(60)

/// Evaluates `condition` every `poll` until it holds (true) or `deadline` passes (false, after
/// one last evaluation). Tests wait for the state they need this way, never with a fixed sleep.
@discardableResult
public func waitUntil(deadline: ContinuousClock.Instant = .now + patience, poll: Duration = .milliseconds(20),
                      _ condition: () throws -> Bool) rethrows -> Bool {
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        let (seconds, attoseconds) = poll.components
        Thread.sleep(forTimeInterval: Double(seconds) + Double(attoseconds) * 1e-18)
    }
    return try condition()
}

/// `waitUntil` for conditions that must be awaited (an HTTP call, an actor's state).
@discardableResult
public func waitUntil(deadline: ContinuousClock.Instant = .now + patience, poll: Duration = .milliseconds(20),
                      _ condition: () async throws -> Bool) async rethrows -> Bool {
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: poll)
    }
    return try await condition()
}
