import Engine
import Testing

/// The admission order of waiting requests (`--prefill-batching-policy`), on an injected clock.
@Suite struct AdmissionOrderTests {
    typealias Candidate = AdmissionOrder.Candidate
    static let second: UInt64 = 1_000_000_000

    @Test func lengthGroupsArePowerOfTwoRanges() {
        let groups = [1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 33: 6, 64: 6, 65: 7, 1024: 10, 1025: 11, 2048: 11, 2049: 12]
        for (tokens, group) in groups {
            #expect(AdmissionOrder.lengthGroup(promptTokens: tokens) == group, "\(tokens) tokens")
        }
    }

    @Test func fcfsIsTheDefaultAndKeepsQueueOrder() {
        #expect(ServingConfiguration().prefillBatchingPolicy == .fcfs)
        #expect(AdmissionOrder().policy == .fcfs)
        let candidates = [Candidate(arrival: 5, promptTokens: 2048), Candidate(arrival: 1, promptTokens: 8, resumed: true),
                          Candidate(arrival: 3, promptTokens: 64), Candidate(arrival: 4, promptTokens: 16)]
        #expect(AdmissionOrder(policy: .fcfs).order(candidates, now: 100 * Self.second) == [0, 1, 2, 3])
    }

    @Test func gtsfAdmitsTheShortestGroupFirstAndArrivalOrderWithinAGroup() {
        let order = AdmissionOrder(policy: .gtsf, maxWaitNanoseconds: 60 * Self.second)
        // Arrivals 1...6 s; lengths in groups 11, 6, 11, 6, 9, 6.
        let candidates = [2000, 40, 1500, 64, 300, 33].enumerated().map {
            Candidate(arrival: UInt64($0.offset + 1) * Self.second, promptTokens: $0.element)
        }
        #expect(order.order(candidates, now: 10 * Self.second) == [1, 3, 5, 4, 0, 2])
    }

    @Test func withinAGroupArrivalWinsOverQueuePosition() {
        // The queue may already be reordered; arrival decides, not the position.
        let order = AdmissionOrder(policy: .gtsf, maxWaitNanoseconds: 60 * Self.second)
        let candidates = [Candidate(arrival: 3, promptTokens: 50), Candidate(arrival: 1, promptTokens: 60),
                          Candidate(arrival: 2, promptTokens: 40)]
        #expect(order.order(candidates, now: 10) == [1, 2, 0])
    }

    @Test func aRequestWaitingPastTheBoundGoesAheadOfEveryGroup() {
        let order = AdmissionOrder(policy: .gtsf, maxWaitNanoseconds: 5 * Self.second)
        let long = Candidate(arrival: 0, promptTokens: 2048)
        let shorts = (1...3).map { Candidate(arrival: UInt64($0) * Self.second, promptTokens: 64) }
        // Before the bound the long prompt waits behind every short one...
        #expect(order.order([long] + shorts, now: 5 * Self.second - 1) == [1, 2, 3, 0])
        // ...from the bound on it goes first.
        #expect(order.order([long] + shorts, now: 5 * Self.second) == [0, 1, 2, 3])
        // Several overdue ones go by arrival, ahead of a short one that is not overdue.
        let overdueLong = Candidate(arrival: 2 * Self.second, promptTokens: 2048)
        let overdueShort = Candidate(arrival: 3 * Self.second, promptTokens: 8)
        let fresh = Candidate(arrival: 9 * Self.second, promptTokens: 4)
        #expect(order.order([fresh, overdueShort, overdueLong], now: 9 * Self.second) == [2, 1, 0])
    }

    @Test func noRequestWaitsLongerThanTheBoundUnderAStreamOfShortOnes() {
        // Two short prompts arrive every second and one request is admitted per second: the
        // long one is admitted at the bound, not never.
        let order = AdmissionOrder(policy: .gtsf, maxWaitNanoseconds: 7 * Self.second)
        var queue = [Candidate(arrival: 0, promptTokens: 2048)]
        var admittedLongAt: UInt64?
        for second in UInt64(1)...20 where admittedLongAt == nil {
            queue.append(Candidate(arrival: second * Self.second, promptTokens: 32))
            queue.append(Candidate(arrival: second * Self.second, promptTokens: 20))
            let head = order.order(queue, now: second * Self.second)[0]
            if queue[head].promptTokens == 2048 { admittedLongAt = second }
            queue.remove(at: head)
        }
        #expect(admittedLongAt == 7)
    }

    @Test func zeroMaxWaitIsArrivalOrder() {
        let order = AdmissionOrder(policy: .gtsf, maxWaitNanoseconds: 0)
        let candidates = [Candidate(arrival: 1, promptTokens: 2048), Candidate(arrival: 2, promptTokens: 8),
                          Candidate(arrival: 3, promptTokens: 512)]
        #expect(order.order(candidates, now: 3) == [0, 1, 2])
    }

    @Test func preemptedRequestsKeepTheFrontInQueueOrder() {
        let order = AdmissionOrder(policy: .gtsf, maxWaitNanoseconds: 1)
        let candidates = [Candidate(arrival: 9, promptTokens: 2000, resumed: true),
                          Candidate(arrival: 4, promptTokens: 900, resumed: true),
                          Candidate(arrival: 0, promptTokens: 8), Candidate(arrival: 10, promptTokens: 4)]
        #expect(order.order(candidates, now: 10) == [0, 1, 2, 3])
    }
}
