import Foundation
import Routing
import Testing
import TestSupport

/// Health thresholds, the circuit breaker, retry backoff and the admission queue, each at the
/// exact edge of its rule (times are passed in, never waited for).
@Suite struct ReliabilityRulesTests {
    @Test func aWorkerLeavesAfterThreeFailuresAndReturnsAfterTwoSuccesses() {
        var health = HealthThresholds()
        let r7 = health.record(healthy: true)
        #expect(r7 == .joined)
        let r8 = health.record(healthy: false)
        #expect(r8 == nil)
        let r9 = health.record(healthy: false)
        #expect(r9 == nil)
        #expect(health.routable)
        let r10 = health.record(healthy: true)
        #expect(r10 == nil)
        let r11 = health.record(healthy: false)
        #expect(r11 == nil)
        let r12 = health.record(healthy: false)
        #expect(r12 == nil)
        let r13 = health.record(healthy: false)
        #expect(r13 == .left)
        #expect(!health.routable)
        let r14 = health.record(healthy: false)
        #expect(r14 == nil)
        let r15 = health.record(healthy: true)
        #expect(r15 == nil)
        let r16 = health.record(healthy: false)
        #expect(r16 == nil)
        let r17 = health.record(healthy: true)
        #expect(r17 == nil)
        let r18 = health.record(healthy: true)
        #expect(r18 == .joined)
        #expect(health.routable)
    }

    @Test func customThresholdsAndAdmission() {
        var health = HealthThresholds(failureThreshold: 1, successThreshold: 3)
        #expect(!health.routable)
        health.admit()
        #expect(health.routable)
        let r19 = health.record(healthy: false)
        #expect(r19 == .left)
        let r20 = health.record(healthy: true)
        #expect(r20 == nil)
        let r21 = health.record(healthy: true)
        #expect(r21 == nil)
        let r22 = health.record(healthy: true)
        #expect(r22 == .joined)
    }

    @Test func theBreakerOpensAfterTheThresholdAndHalfOpensAfterItsTime() {
        let t0 = ContinuousClock.now
        var breaker = CircuitBreaker(settings: .init(failureThreshold: 3, successThreshold: 2, openDuration: .seconds(10)))
        let allowed1 = breaker.allowRequest(at: t0)
        #expect(allowed1)
        breaker.recordFailure(at: t0)
        breaker.recordFailure(at: t0)
        breaker.recordSuccess()
        breaker.recordFailure(at: t0)
        breaker.recordFailure(at: t0)
        #expect(breaker.state(at: t0) == .closed)
        breaker.recordFailure(at: t0)
        #expect(breaker.state(at: t0) == .open)
        let allowed2 = breaker.allowRequest(at: t0 + .seconds(9.999))
        #expect(!allowed2)
        #expect(breaker.state(at: t0 + .seconds(10)) == .halfOpen)
        #expect(breaker.isAvailable(at: t0 + .seconds(10)))
        // One trial at a time.
        let allowed3 = breaker.allowRequest(at: t0 + .seconds(10))
        #expect(allowed3)
        let allowed4 = breaker.allowRequest(at: t0 + .seconds(10))
        #expect(!allowed4)
        #expect(!breaker.isAvailable(at: t0 + .seconds(10)))
        breaker.recordSuccess()
        #expect(breaker.state == .halfOpen)
        let allowed5 = breaker.allowRequest(at: t0 + .seconds(11))
        #expect(allowed5)
        breaker.recordSuccess()
        #expect(breaker.state == .closed)
    }

    @Test func aFailedTrialOpensTheBreakerAgain() {
        let t0 = ContinuousClock.now
        var breaker = CircuitBreaker(settings: .init(failureThreshold: 1, successThreshold: 1, openDuration: .seconds(5)))
        breaker.recordFailure(at: t0)
        let allowed6 = breaker.allowRequest(at: t0 + .seconds(5))
        #expect(allowed6)
        breaker.recordFailure(at: t0 + .seconds(6))
        #expect(breaker.state(at: t0 + .seconds(10.9)) == .open)
        #expect(breaker.state(at: t0 + .seconds(11)) == .halfOpen)
        #expect(CircuitBreaker.State.open.gaugeValue == 1 && CircuitBreaker.State.halfOpen.gaugeValue == 2)
    }

    @Test func backoffGrowsToItsCapWithBoundedJitter() {
        let backoff = RetryBackoff(maxRetries: 3, initial: .milliseconds(50), maximum: .milliseconds(300), multiplier: 2, jitter: 0.2)
        #expect(backoff.delay(attempt: 0, random: { 0.5 }) == .milliseconds(50))
        #expect(backoff.delay(attempt: 1, random: { 0.5 }) == .milliseconds(100))
        #expect(backoff.delay(attempt: 2, random: { 0.5 }) == .milliseconds(200))
        #expect(backoff.delay(attempt: 3, random: { 0.5 }) == .milliseconds(300))
        #expect(backoff.delay(attempt: 30, random: { 0.5 }) == .milliseconds(300))
        func near(_ a: Duration, _ b: Duration) -> Bool { abs((a - b).components.attoseconds) < 1_000_000_000_000 && (a - b).components.seconds == 0 }
        #expect(near(backoff.delay(attempt: 1, random: { 0 }), .milliseconds(80)))
        #expect(near(backoff.delay(attempt: 1, random: { 0.999_999_999 }), .milliseconds(120)))
    }

    static func body(_ error: any Error) -> String {
        String(decoding: (error as? RouterError)?.jsonBody ?? Data(), as: UTF8.self)
    }

    @Test func aFullQueueRefusesWith429AndTheExactError() async throws {
        let queue = AdmissionQueue(settings: .init(maxConcurrent: 1, maxWaiting: 1, queueTimeout: .seconds(600)))
        try await queue.acquire()
        let waiter = Task { try await queue.acquire() }
        await waitUntil { () async -> Bool in queue.waiting == 1 }
        do {
            try await queue.acquire()
            Issue.record("a third request was admitted")
        } catch {
            #expect((error as? RouterError)?.status.code == 429)
            #expect(Self.body(error) == #"{"error":{"code":"queue_full","message":"The router is at --max-concurrent-requests (1 running) and its wait queue is full (1 waiting): retry later.","param":null,"type":"rate_limit_error"}}"#)
        }
        queue.release()
        try await waiter.value
        #expect(queue.running == 1 && queue.waiting == 0)
        queue.release()
        #expect(queue.running == 0)
    }

    @Test func aRequestThatWaitsTooLongGets408AndTheExactError() async throws {
        let queue = AdmissionQueue(settings: .init(maxConcurrent: 1, maxWaiting: 4, queueTimeout: .milliseconds(50)))
        try await queue.acquire()
        do {
            try await queue.acquire()
            Issue.record("admitted while the only slot was taken")
        } catch {
            #expect((error as? RouterError)?.status.code == 408)
            #expect(Self.body(error) == #"{"error":{"code":"queue_timeout","message":"The request waited 0.05 s in the router's queue without a free slot.","param":null,"type":"timeout_error"}}"#)
        }
        #expect(queue.waiting == 0)
        queue.release()
        try await queue.acquire()
        queue.release()
        #expect(queue.running == 0)
    }

    @Test func waitersAreServedInOrder() async throws {
        let queue = AdmissionQueue(settings: .init(maxConcurrent: 1, maxWaiting: 10, queueTimeout: .seconds(600)))
        try await queue.acquire()
        let order = OrderRecorder()
        var tasks: [Task<Void, any Error>] = []
        for index in 0..<3 {
            tasks.append(Task {
                try await queue.acquire()
                await order.add(index)
            })
            await waitUntil { () async -> Bool in queue.waiting == index + 1 }
        }
        for served in 1...3 {
            queue.release()
            await waitUntil { await order.count == served }
        }
        for task in tasks { try await task.value }
        #expect(await order.values == [0, 1, 2])
        queue.release()
        #expect(queue.running == 0)
    }

    @Test func noLimitMeansNoQueue() async throws {
        let queue = AdmissionQueue(settings: .init(maxConcurrent: 0))
        for _ in 0..<1000 { try await queue.acquire() }
        #expect(queue.running == 0 && queue.waiting == 0)
    }
}

actor OrderRecorder {
    var values: [Int] = []
    var count: Int { values.count }
    func add(_ value: Int) { values.append(value) }
}

