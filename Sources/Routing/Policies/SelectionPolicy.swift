import ArgumentParser

/// What a policy knows of the request it places.
public struct RoutingRequest: Sendable {
    /// The prompt as text (completions' prompt, or chat messages' roles and contents joined);
    /// only extracted when the policy needs it (`cache_aware`, `bucket`).
    public var promptText: String

    public init(promptText: String = "") {
        self.promptText = promptText
    }
}

/// Picks one worker among routable candidates (sorted by URL, never empty).
public protocol SelectionPolicy: Sendable {
    func choose(among candidates: [WorkerSnapshot], for request: RoutingRequest) -> WorkerSnapshot
    /// Whether `RoutingRequest.promptText` must be filled in.
    var needsPromptText: Bool { get }
}

extension SelectionPolicy {
    public var needsPromptText: Bool { false }
}

/// `--policy`, `--prefill-policy`, `--decode-policy` (sglang-router's names).
public enum PolicyName: String, ExpressibleByArgument, CaseIterable, Sendable {
    case roundRobin = "round_robin"
    case random
    case powerOfTwo = "power_of_two"
    case leastRequests = "least_requests"
    case freeKVFirst = "free_kv_first"
    case cacheAware = "cache_aware"
    case bucket
    /// Ascend's BLB: fewest queued requests.
    case fewestQueued = "fewest_queued"
}

/// Ascend's `--prefill-routing-policy` names.
public enum AscendPrefillPolicy: String, ExpressibleByArgument, CaseIterable, Sendable {
    case roundRobin = "RoundRobin"
    case freeKVFirst = "FreeKVFirst"
    case blb = "BLB"

    public var policyName: PolicyName {
        switch self {
        case .roundRobin: .roundRobin
        case .freeKVFirst: .freeKVFirst
        case .blb: .fewestQueued
        }
    }
}

/// Settings of the policies that have any.
public struct PolicySettings: Sendable {
    /// cache_aware: characters per prefix block (the router has no tokenizer: it hashes text).
    public var cacheBlockChars = 64
    /// cache_aware: the share of a prompt's blocks a worker must already hold to be preferred.
    public var cacheThreshold = 0.5
    /// cache_aware: the load is imbalanced (least loaded wins) when max - min > abs and max > rel × min.
    public var balanceAbsThreshold = 32
    public var balanceRelThreshold = 1.5
    /// cache_aware: prefix blocks remembered per worker.
    public var maxBlocksPerWorker = 1 << 16
    /// bucket: prompt-length boundaries in characters; n boundaries make n + 1 buckets spread
    /// over the workers in URL order.
    public var bucketBoundaries: [Int] = [1024, 4096]

    public init() {}
}

extension PolicyName {
    public func make(settings: PolicySettings) -> any SelectionPolicy {
        switch self {
        case .roundRobin: RoundRobinPolicy()
        case .random: RandomPolicy()
        case .powerOfTwo: PowerOfTwoPolicy()
        case .leastRequests: LeastRequestsPolicy()
        case .freeKVFirst: FreeKVFirstPolicy()
        case .cacheAware: CacheAwarePolicy(settings: settings)
        case .bucket: BucketPolicy(boundaries: settings.bucketBoundaries)
        case .fewestQueued: FewestQueuedPolicy()
        }
    }
}

extension WorkerSnapshot {
    /// Requests on the worker: the router's own in-flight count, or the worker's running plus
    /// waiting requests when its last /load says more (other routers, direct clients).
    var busyness: Int {
        max(inFlight, (load?.runningRequests ?? 0) + (load?.waitingRequests ?? 0))
    }
}
