import FleetPlanning
import Supervision
import Testing

@Suite struct RestartPolicyTests {
    let settings = RestartSettings(initialBackoff: .milliseconds(500), maxBackoff: .seconds(8), multiplier: 2, jitter: 0.2,
                                   crashLoopDeaths: 5, crashLoopWindow: .seconds(60), stablePeriod: .seconds(30))

    @Test func backoffGrowsExponentiallyUpToTheCap() {
        let policy = RestartPolicy(settings: settings)
        let noJitter = { 0.5 }
        #expect(policy.backoff(attempt: 0, random: noJitter) == .milliseconds(500))
        #expect(policy.backoff(attempt: 1, random: noJitter) == .seconds(1))
        #expect(policy.backoff(attempt: 3, random: noJitter) == .seconds(4))
        #expect(policy.backoff(attempt: 10, random: noJitter) == .seconds(8))
    }

    @Test func jitterStaysWithinItsFraction() {
        let policy = RestartPolicy(settings: settings)
        #expect(policy.backoff(attempt: 1, random: { 0 }) == .milliseconds(800))
        #expect(policy.backoff(attempt: 1, random: { 1 }) == .milliseconds(1200))
    }

    @Test func crashLoopMarksTheRankFailedAfterNDeathsInTheWindow() {
        var policy = RestartPolicy(settings: settings)
        let start = ContinuousClock.now
        var delays: [Duration] = []
        for death in 0..<4 {
            guard case .restart(let delay) = policy.recordDeath(at: start + .seconds(death), exitStatus: 1, random: { 0.5 }) else {
                Issue.record("death \(death) should restart")
                return
            }
            delays.append(delay)
        }
        #expect(delays == [.milliseconds(500), .seconds(1), .seconds(2), .seconds(4)])
        #expect(policy.recordDeath(at: start + .seconds(4), exitStatus: 1) == .markFailed(reason: "crash loop: 5 deaths within 60s"))
    }

    @Test func deathsOutsideTheWindowDoNotCount() {
        var policy = RestartPolicy(settings: settings)
        let start = ContinuousClock.now
        for death in 0..<10 {
            let decision = policy.recordDeath(at: start + .seconds(20 * death), exitStatus: nil, random: { 0.5 })
            guard case .restart = decision else {
                Issue.record("death \(death) at \(20 * death)s should restart, got \(decision)")
                return
            }
        }
    }

    @Test func exitStatus78IsNeverRestarted() {
        var policy = RestartPolicy(settings: settings)
        #expect(policy.recordDeath(at: .now, exitStatus: 78) == .markFailed(reason: "exit status 78 (bad configuration): not restarted"))
    }

    @Test func stablePeriodResetsTheBackoff() {
        var policy = RestartPolicy(settings: settings)
        let start = ContinuousClock.now
        _ = policy.recordDeath(at: start, exitStatus: 1, random: { 0.5 })
        _ = policy.recordDeath(at: start + .seconds(1), exitStatus: 1, random: { 0.5 })
        policy.resetBackoff()
        #expect(policy.recordDeath(at: start + .seconds(40), exitStatus: 1, random: { 0.5 }) == .restart(after: .milliseconds(500)))
    }
}
