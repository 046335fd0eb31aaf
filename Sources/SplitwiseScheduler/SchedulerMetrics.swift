import Synchronization

/// The scheduler's figures for `/metrics` (Prometheus text): queue depth per node, placement
/// decisions, Redis round-trip latency, expired and retried requests, Redis reachability.
public final class SchedulerMetrics: Sendable {
    static let roundTripBuckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5]

    private struct State {
        var placements: [String: Int] = [:]
        var roundTripCounts = [Int](repeating: 0, count: SchedulerMetrics.roundTripBuckets.count)
        var roundTripTotal = 0
        var roundTripSum = 0.0
        var expired = 0
        var retries = 0
        var lost = 0
        var redisCommands = 0
    }

    private let state = Mutex(State())

    public init() {}

    func recordRoundTrip(_ duration: Duration) {
        let seconds = duration.seconds
        state.withLock { state in
            for (index, bound) in Self.roundTripBuckets.enumerated() where seconds <= bound { state.roundTripCounts[index] += 1 }
            state.roundTripTotal += 1
            state.roundTripSum += seconds
        }
    }

    func recordPlacement(_ placement: Placement) {
        state.withLock { state in
            for node in placement.nodes { state.placements["\(node.info.role.rawValue)\u{0}\(node.id)", default: 0] += 1 }
        }
    }

    func recordExpired() { state.withLock { $0.expired += 1 } }
    func recordRetry() { state.withLock { $0.retries += 1 } }
    func recordLost(_ count: Int) { state.withLock { $0.lost += count } }
    /// Redis commands sent on behalf of client requests (placement and results, not the sync).
    func recordRequestCommands(_ count: Int) { state.withLock { $0.redisCommands += count } }

    /// Placements so far per node id (tests and benchmarks).
    public var placementsByNode: [String: Int] {
        state.withLock { state in
            var byNode: [String: Int] = [:]
            for (key, count) in state.placements { byNode[String(key.split(separator: "\u{0}").last ?? ""), default: 0] += count }
            return byNode
        }
    }

    func text(nodes: [ClusterNode], live: Set<String>, redisUp: Bool, outstanding: Int) -> String {
        let s = state.withLock { $0 }
        var lines: [String] = []
        func family(_ name: String, _ type: String, _ help: String) {
            lines.append("# HELP tandem:\(name) \(help)")
            lines.append("# TYPE tandem:\(name) \(type)")
        }
        family("scheduler_redis_up", "gauge", "1 while the scheduler's last sync with Redis succeeded")
        lines.append("tandem:scheduler_redis_up \(redisUp ? 1 : 0)")
        family("scheduler_node_queue_depth", "gauge", "Requests waiting in each node's ReqQ list at its last sync")
        family("scheduler_node_load", "gauge", "Each node's published load (prefill, mixed: prompt tokens; decode: requests)")
        family("scheduler_node_live", "gauge", "1 while a node's heartbeat is within --scheduler-expire-period")
        for node in nodes.sorted(by: { $0.id < $1.id }) {
            let labels = "node=\"\(node.id)\",role=\"\(node.info.role.rawValue)\""
            lines.append("tandem:scheduler_node_queue_depth{\(labels)} \(node.info.queued)")
            lines.append("tandem:scheduler_node_load{\(labels)} \(node.info.load)")
            lines.append("tandem:scheduler_node_live{\(labels)} \(live.contains(node.id) ? 1 : 0)")
        }
        family("scheduler_placements_total", "counter", "Legs this instance placed, per node")
        for (key, count) in s.placements.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "\u{0}")
            lines.append("tandem:scheduler_placements_total{node=\"\(parts.last ?? "")\",role=\"\(parts.first ?? "")\"} \(count)")
        }
        family("scheduler_outstanding_legs", "gauge", "Legs this instance runs for the cluster now")
        lines.append("tandem:scheduler_outstanding_legs \(outstanding)")
        family("scheduler_expired_requests_total", "counter", "Requests that got no result within --scheduler-ttl")
        lines.append("tandem:scheduler_expired_requests_total \(s.expired)")
        family("scheduler_retries_total", "counter", "Requests placed again after a failure before any output")
        lines.append("tandem:scheduler_retries_total \(s.retries)")
        family("scheduler_rescued_legs_total", "counter", "Legs taken out of a dead node's queue")
        lines.append("tandem:scheduler_rescued_legs_total \(s.lost)")
        family("scheduler_request_redis_commands_total", "counter", "Redis commands sent to place requests and read their results")
        lines.append("tandem:scheduler_request_redis_commands_total \(s.redisCommands)")
        family("scheduler_redis_round_trip_seconds", "histogram", "Seconds per Redis round trip (one command or pipeline)")
        for (index, bound) in Self.roundTripBuckets.enumerated() {
            lines.append("tandem:scheduler_redis_round_trip_seconds_bucket{le=\"\(bound)\"} \(s.roundTripCounts[index])")
        }
        lines.append("tandem:scheduler_redis_round_trip_seconds_bucket{le=\"+Inf\"} \(s.roundTripTotal)")
        lines.append("tandem:scheduler_redis_round_trip_seconds_sum \(s.roundTripSum)")
        lines.append("tandem:scheduler_redis_round_trip_seconds_count \(s.roundTripTotal)")
        return lines.joined(separator: "\n") + "\n"
    }
}
