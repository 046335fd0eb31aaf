/// `--prefill-batching-policy`: the order in which waiting requests enter the running batch
/// (their prefill). Running sequences are never reordered; only admission is.
public enum PrefillBatchingPolicy: String, Sendable, Equatable, CaseIterable, Codable {
    /// First come, first served: arrival order.
    case fcfs
    /// Group-time-short-first (Ascend MindIE's prefill batching): waiting prompts are grouped by
    /// length — a group is a power-of-two range of prompt tokens, (2^(k-1), 2^k], so 33–64
    /// tokens are one group and 1025–2048 another — and the group of the shortest prompts goes
    /// first, arrival order inside a group. Short prompts no longer wait behind long prefills,
    /// and a step's prefills are of similar length. Ageing bounds the wait: a request that has
    /// waited `maxWait` or longer goes ahead of every group (overdue ones in arrival order).
    case gtsf
}

/// Where each waiting request stands in the admission queue under a `PrefillBatchingPolicy`.
/// Pure (the clock is a parameter), so the order is tested without waiting.
public struct AdmissionOrder: Sendable, Equatable {
    public var policy: PrefillBatchingPolicy
    /// gtsf: nanoseconds of waiting after which a request goes ahead of every length group.
    public var maxWaitNanoseconds: UInt64

    public init(policy: PrefillBatchingPolicy = .fcfs, maxWaitNanoseconds: UInt64 = 10_000_000_000) {
        self.policy = policy
        self.maxWaitNanoseconds = maxWaitNanoseconds
    }

    /// A waiting request as the order sees it.
    public struct Candidate: Sendable, Equatable {
        /// When it was submitted (nanoseconds on the clock `order` is given `now` on).
        public var arrival: UInt64
        /// Prompt tokens it brings to prefill.
        public var promptTokens: Int
        /// Preempted after it had been admitted: it keeps its place at the front of the queue
        /// under every policy (it is recomputed before anything new is admitted).
        public var resumed: Bool

        public init(arrival: UInt64, promptTokens: Int, resumed: Bool = false) {
            self.arrival = arrival
            self.promptTokens = promptTokens
            self.resumed = resumed
        }
    }

    /// The length group of a prompt: ⌈log₂ tokens⌉ (1 token: group 0; 2: 1; 3–4: 2; 33–64: 6).
    public static func lengthGroup(promptTokens: Int) -> Int {
        promptTokens <= 1 ? 0 : Int.bitWidth - (promptTokens - 1).leadingZeroBitCount
    }

    /// The admission order of `candidates` (given in queue order), as indices into
    /// `candidates`. fcfs keeps queue order. gtsf: resumed ones first in queue order, then the
    /// overdue by arrival, then the length groups, shortest first, each by arrival.
    public func order(_ candidates: [Candidate], now: UInt64) -> [Int] {
        guard policy == .gtsf else { return Array(candidates.indices) }
        // (class, group, arrival, queue position): class 0 resumed, 1 overdue, 2 the rest.
        func key(_ index: Int) -> (Int, Int, UInt64, Int) {
            let candidate = candidates[index]
            if candidate.resumed { return (0, 0, 0, index) }
            let waited = now >= candidate.arrival ? now - candidate.arrival : 0
            if waited >= maxWaitNanoseconds { return (1, 0, candidate.arrival, index) }
            return (2, Self.lengthGroup(promptTokens: candidate.promptTokens), candidate.arrival, index)
        }
        return candidates.indices.sorted { key($0) < key($1) }
    }
}
