import FleetPlanning
import Supervision
import Testing

/// Every time window and threshold of the supervisor at its exact edge, on instants the test
/// chooses (no sleeping, no wall clock): the decisions take the time as an argument.
@Suite struct TimeWindowEdgeTests {
    let restart = RestartSettings(initialBackoff: .milliseconds(500), maxBackoff: .seconds(6), multiplier: 2, jitter: 0.2,
                                  crashLoopDeaths: 5, crashLoopWindow: .seconds(60), stablePeriod: .seconds(30))
    let health = HealthSettings(startupGrace: .seconds(10), interval: .seconds(1), timeout: .seconds(1), failureThreshold: 3)
    let start = ContinuousClock.now
    let noJitter = { 0.5 }

    /// A policy with four deaths at start, +1s, +2s, +3s (all restarted).
    func policyWithFourDeaths() -> RestartPolicy {
        var policy = RestartPolicy(settings: restart)
        for second in 0..<4 {
            let decision = policy.recordDeath(at: start + .seconds(second), exitStatus: 1, random: noJitter)
            if case .markFailed = decision { Issue.record("death \(second + 1) of 5 should restart, got \(decision)") }
        }
        return policy
    }

    @Test func aDeathExactlyOneCrashLoopWindowOldStillCounts() {
        var policy = policyWithFourDeaths()
        #expect(policy.recordDeath(at: start + .seconds(60), exitStatus: 1, random: noJitter)
            == .markFailed(reason: "crash loop: 5 deaths within 60s"))
    }

    @Test func aDeathOneNanosecondOlderThanTheWindowNoLongerCounts() {
        var policy = policyWithFourDeaths()
        #expect(policy.recordDeath(at: start + .seconds(60) + .nanoseconds(1), exitStatus: 1, random: noJitter)
            == .restart(after: .seconds(6)))
    }

    @Test func theDeathThatReachesTheCrashLoopCountMarksTheRankFailed() {
        var policy = RestartPolicy(settings: restart)
        for death in 1...4 {
            guard case .restart = policy.recordDeath(at: start, exitStatus: 1, random: noJitter) else {
                Issue.record("death \(death) of 5 should restart")
                return
            }
        }
        #expect(policy.recordDeath(at: start, exitStatus: 1, random: noJitter) == .markFailed(reason: "crash loop: 5 deaths within 60s"))
    }

    @Test func theBackoffReachesItsCapExactlyAndStaysThere() {
        let policy = RestartPolicy(settings: restart)
        #expect(policy.backoff(attempt: 3, random: noJitter) == .seconds(4))
        #expect(policy.backoff(attempt: 4, random: noJitter) == .seconds(6))
        let exact = RestartPolicy(settings: RestartSettings(
            initialBackoff: .milliseconds(500), maxBackoff: .seconds(4), multiplier: 2, jitter: 0,
            crashLoopDeaths: 5, crashLoopWindow: .seconds(60), stablePeriod: .seconds(30)))
        #expect(exact.backoff(attempt: 3, random: noJitter) == .seconds(4))
        #expect(exact.backoff(attempt: 4, random: noJitter) == .seconds(4))
    }

    @Test func theProbeThatReachesTheFailureThresholdMakesTheRankUnhealthy() {
        var tracker = HealthTracker(settings: health, startedAt: start)
        #expect(tracker.record(healthy: true, at: start + .seconds(1)) == .becameReady)
        #expect(tracker.record(healthy: false, at: start + .seconds(2)) == .failed(consecutive: 1))
        #expect(tracker.record(healthy: false, at: start + .seconds(3)) == .failed(consecutive: 2))
        #expect(tracker.record(healthy: false, at: start + .seconds(4)) == .unhealthy(consecutive: 3))
    }

    @Test func aHealthyAnswerBelowTheThresholdStartsTheCountAgain() {
        var tracker = HealthTracker(settings: health, startedAt: start)
        #expect(tracker.record(healthy: true, at: start) == .becameReady)
        #expect(tracker.record(healthy: false, at: start + .seconds(1)) == .failed(consecutive: 1))
        #expect(tracker.record(healthy: false, at: start + .seconds(2)) == .failed(consecutive: 2))
        #expect(tracker.record(healthy: true, at: start + .seconds(3)) == .healthy)
        #expect(tracker.record(healthy: false, at: start + .seconds(4)) == .failed(consecutive: 1))
        #expect(tracker.record(healthy: false, at: start + .seconds(5)) == .failed(consecutive: 2))
        #expect(tracker.consecutiveFailures == 2)
    }

    @Test func aThresholdOfOneReplacesAtTheFirstCountedFailure() {
        var settings = health
        settings.failureThreshold = 1
        var tracker = HealthTracker(settings: settings, startedAt: start)
        #expect(tracker.record(healthy: true, at: start) == .becameReady)
        #expect(tracker.record(healthy: false, at: start + .seconds(1)) == .unhealthy(consecutive: 1))
    }

    @Test func failuresCountFromTheStartupGracesEndExactly() {
        var tracker = HealthTracker(settings: health, startedAt: start)
        let graceEnd = start + .seconds(10)
        #expect(tracker.record(healthy: false, at: start) == .failedInGrace)
        #expect(tracker.record(healthy: false, at: graceEnd - .nanoseconds(1)) == .failedInGrace)
        #expect(tracker.consecutiveFailures == 0)
        #expect(tracker.record(healthy: false, at: graceEnd) == .failed(consecutive: 1))
        #expect(tracker.record(healthy: false, at: graceEnd + .seconds(1)) == .failed(consecutive: 2))
        #expect(tracker.record(healthy: false, at: graceEnd + .seconds(2)) == .unhealthy(consecutive: 3))
    }

    @Test func aReadyRanksFailuresCountEvenInsideTheStartupGrace() {
        var tracker = HealthTracker(settings: health, startedAt: start)
        #expect(tracker.record(healthy: true, at: start + .seconds(1)) == .becameReady)
        #expect(tracker.record(healthy: false, at: start + .seconds(2)) == .failed(consecutive: 1))
    }

    @Test func theStablePeriodsLastInstantIsNotYetStable() {
        var tracker = HealthTracker(settings: health, startedAt: start)
        let ready = start + .seconds(3)
        #expect(!tracker.isStable(at: ready + .seconds(60), stablePeriod: restart.stablePeriod))
        #expect(tracker.record(healthy: true, at: ready) == .becameReady)
        #expect(tracker.readySince == ready)
        #expect(!tracker.isStable(at: ready + .seconds(30) - .nanoseconds(1), stablePeriod: restart.stablePeriod))
        #expect(tracker.isStable(at: ready + .seconds(30), stablePeriod: restart.stablePeriod))
    }

    @Test func laterHealthyAnswersDoNotRestartTheStablePeriod() {
        var tracker = HealthTracker(settings: health, startedAt: start)
        #expect(tracker.record(healthy: true, at: start) == .becameReady)
        #expect(tracker.record(healthy: true, at: start + .seconds(20)) == .healthy)
        #expect(tracker.isStable(at: start + .seconds(30), stablePeriod: restart.stablePeriod))
    }
}
