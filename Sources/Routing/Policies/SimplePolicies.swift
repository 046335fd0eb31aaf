import Synchronization

/// Each worker in turn.
public final class RoundRobinPolicy: SelectionPolicy {
    private let next = Atomic<Int>(0)

    public init() {}

    public func choose(among candidates: [WorkerSnapshot], for request: RoutingRequest) -> WorkerSnapshot {
        let turn = next.wrappingAdd(1, ordering: .relaxed).oldValue
        return candidates[(turn % candidates.count + candidates.count) % candidates.count]
    }
}

/// A uniformly random worker.
public struct RandomPolicy: SelectionPolicy {
    public init() {}

    public func choose(among candidates: [WorkerSnapshot], for request: RoutingRequest) -> WorkerSnapshot {
        candidates.randomElement()!
    }
}

/// Two random workers, the less busy of them.
public struct PowerOfTwoPolicy: SelectionPolicy {
    public init() {}

    public func choose(among candidates: [WorkerSnapshot], for request: RoutingRequest) -> WorkerSnapshot {
        guard candidates.count > 1 else { return candidates[0] }
        let first = Int.random(in: 0..<candidates.count)
        var second = Int.random(in: 0..<candidates.count - 1)
        if second >= first { second += 1 }
        return candidates[second].busyness < candidates[first].busyness ? candidates[second] : candidates[first]
    }
}

/// The fewest requests in flight from this router (ties: the first by URL).
public struct LeastRequestsPolicy: SelectionPolicy {
    public init() {}

    public func choose(among candidates: [WorkerSnapshot], for request: RoutingRequest) -> WorkerSnapshot {
        candidates.min { $0.inFlight < $1.inFlight }!
    }
}

/// The most free KV blocks in the worker's last /load (ties: fewer in flight). Workers whose
/// load is not known yet count as having none free.
public struct FreeKVFirstPolicy: SelectionPolicy {
    public init() {}

    public func choose(among candidates: [WorkerSnapshot], for request: RoutingRequest) -> WorkerSnapshot {
        candidates.min { a, b in
            let freeA = a.load?.kvBlocksFree ?? -1, freeB = b.load?.kvBlocksFree ?? -1
            return freeA != freeB ? freeA > freeB : a.inFlight < b.inFlight
        }!
    }
}

/// Ascend's BLB: the fewest queued requests (waiting requests in the worker's last /load),
/// ties by fewer in flight from this router.
public struct FewestQueuedPolicy: SelectionPolicy {
    public init() {}

    public func choose(among candidates: [WorkerSnapshot], for request: RoutingRequest) -> WorkerSnapshot {
        candidates.min { a, b in
            let queuedA = a.load?.waitingRequests ?? 0, queuedB = b.load?.waitingRequests ?? 0
            return queuedA != queuedB ? queuedA < queuedB : a.inFlight < b.inFlight
        }!
    }
}

/// Prefill by prompt length: `boundaries` (characters) cut lengths into buckets; each bucket owns
/// a share of the workers in URL order (the least busy of its share serves), so similar lengths
/// meet on the same instances.
public struct BucketPolicy: SelectionPolicy {
    public let boundaries: [Int]

    public init(boundaries: [Int]) {
        self.boundaries = boundaries.sorted()
    }

    public var needsPromptText: Bool { true }

    public func choose(among candidates: [WorkerSnapshot], for request: RoutingRequest) -> WorkerSnapshot {
        let length = request.promptText.utf8.count
        let bucket = boundaries.firstIndex { length < $0 } ?? boundaries.count
        let buckets = boundaries.count + 1, count = candidates.count
        let lower = bucket * count / buckets
        let upper = max(lower + 1, (bucket + 1) * count / buckets)
        return candidates[lower..<min(upper, count)].min { $0.busyness < $1.busyness }!
    }
}
