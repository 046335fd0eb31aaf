import Foundation
import Logging
import PDProtocol
import Synchronization

/// FastDeploy's splitwise scheduler over Redis, for one instance: it publishes the instance in
/// `{topic}.cluster` every sync period (and reads the cluster back in the same round trip),
/// pulls the legs placed on it from `ReqQ_{node id}` and runs them (`TaskRunner`), writes
/// their results into the placing instance's result list, and places the requests this
/// instance receives (`dispatch`, in Dispatch.swift). docs/DESIGN.md, "Splitwise scheduler".
public final class SplitwiseScheduler: Sendable {
    /// Runs one leg placed on this instance and reports its response through `results`.
    public typealias TaskRunner = @Sendable (ScheduledTask, _ results: ResultSink) async -> Void

    public let nodeID: String
    public let settings: SchedulerSettings
    public let metrics: SchedulerMetrics
    let role: SplitwiseRole
    let host: String
    let disaggregated: SchedulerNodeInfo.Disaggregated
    let logger: Logger
    /// Short commands: the sync, placing legs, writing results.
    let commands: RedisClient
    /// BRPOP on this node's request list.
    private let taskReader: RedisClient
    /// BRPOP on this node's result list.
    private let resultReader: RedisClient
    let state = Mutex(State())
    private let writerWake: AsyncStream<Void>.Continuation
    private let writerWakes: AsyncStream<Void>

    struct State {
        var nodes: [ClusterNode] = []
        var live: Set<String> = []
        /// nil while the last sync succeeded.
        var redisProblem: String? = "not synced with Redis yet"
        /// Node expiry is judged only once every node could publish again after an outage.
        var syncedSince: ContinuousClock.Instant?
        /// Wall time of the last sync that reached Redis.
        var lastGoodSync: Double?
        /// While expiry is not judged: the oldest heartbeat still counted live (a node live when
        /// Redis went away stays live until it could publish again).
        var graceFloor = 0.0
        var queued = 0
        /// Legs running here: load and start.
        var outstanding: [String: (load: Int, since: ContinuousClock.Instant, task: Task<Void, Never>?)] = [:]
        /// Requests this instance placed, by leg request id.
        var pending: [String: PendingAttempt] = [:]
        var unwritten: [(key: String, value: Data, at: ContinuousClock.Instant)] = []
        /// Items written so far per leg running here (their sequence numbers).
        var written: [String: Int] = [:]
        var running: [Task<Void, Never>] = []
    }

    struct PendingAttempt {
        var results: AsyncStream<ScheduledResult>.Continuation
        var nodes: [String]
    }

    public init(settings: SchedulerSettings, role: SplitwiseRole, endpoint: PeerEndpoint, transferProtocols: [TransferProtocol],
                logger: Logger, nodeID: String = UUID().uuidString.lowercased()) {
        self.nodeID = nodeID
        self.settings = settings
        self.role = role
        host = endpoint.host
        disaggregated = .init(endpoint: endpoint, transferProtocols: transferProtocols)
        self.logger = logger
        let metrics = SchedulerMetrics()
        self.metrics = metrics
        let record: @Sendable (Duration) -> Void = { metrics.recordRoundTrip($0) }
        commands = RedisClient(address: settings.address, timeout: settings.commandTimeout, label: "commands", onRoundTrip: record)
        // A blocking read waits up to 1 s in Redis; its socket timeout must be longer.
        let blocking = settings.commandTimeout + .seconds(1)
        taskReader = RedisClient(address: settings.address, timeout: blocking, label: "tasks")
        resultReader = RedisClient(address: settings.address, timeout: blocking, label: "results")
        (writerWakes, writerWake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Logs in and checks the server (start-up: an error here is a configuration error).
    public func connect() async throws(RedisError) -> String {
        let version = try await commands.checkVersion()
        logger.info("splitwise scheduler: Redis \(version) at \(settings.address.description), topic '\(settings.topic)', node \(nodeID) (\(role.rawValue))")
        return version
    }

    /// Starts publishing, pulling legs and reading results.
    public func start(runner: @escaping TaskRunner) {
        // The first two stop when the node drains (`stop`).
        let loops = [
            Task { await self.syncLoop() },
            Task { await self.pullLoop(runner: runner) },
            Task { await self.readLoop() },
            Task { await self.writeLoop() },
        ]
        state.withLock { $0.running = loops }
    }

    /// Takes this node out of the cluster (drain): it stops publishing and pulling legs, and
    /// leaves the cluster hash; results of legs still running are written, and requests this
    /// instance placed still get their answers.
    public func stop() async {
        let loops = state.withLock { state -> [Task<Void, Never>] in
            defer { state.running = Array(state.running.dropFirst(2)) }
            return Array(state.running.prefix(2))
        }
        for loop in loops {
            loop.cancel()
            await loop.value
        }
        _ = try? await commands.command(["HDEL", SchedulerKeys.cluster(topic: settings.topic), nodeID])
    }

    /// What `/health` should say about the scheduler: nil when Redis answers.
    public var problem: String? { state.withLock { $0.redisProblem } }

    public func metricsText() -> String {
        let (nodes, live, problem, outstanding) = state.withLock { ($0.nodes, $0.live, $0.redisProblem, $0.outstanding.count) }
        return metrics.text(nodes: nodes, live: live, redisUp: problem == nil, outstanding: outstanding)
    }

    /// The live nodes as the last sync saw them.
    public var liveNodes: [ClusterNode] { state.withLock { state in state.nodes.filter { state.live.contains($0.id) } } }

    var load: Int { state.withLock { $0.outstanding.values.reduce(0) { $0 + $1.load } } }

    // MARK: sync

    private func syncLoop() async {
        while !Task.isCancelled {
            await sync()
            try? await Task.sleep(for: settings.syncPeriod)
        }
    }

    /// One round trip: publish this node, count its queue, read the cluster.
    func sync() async {
        let cluster = SchedulerKeys.cluster(topic: settings.topic)
        let (queued, load) = state.withLock { state in (state.queued, state.outstanding.values.reduce(0) { $0 + $1.load }) }
        let info = SchedulerNodeInfo(ts: Date().timeIntervalSince1970, role: role, load: load, host: host,
                                     disaggregated: disaggregated, queued: queued)
        guard let entry = try? JSONEncoder().encode(info) else { return }
        let replies: [RedisReply]
        do {
            replies = try await commands.pipeline([
                [Data("HSET".utf8), Data(cluster.utf8), Data(nodeID.utf8), entry],
                [Data("LLEN".utf8), Data(SchedulerKeys.requests(node: nodeID).utf8)],
                [Data("HGETALL".utf8), Data(cluster.utf8)],
            ])
        } catch {
            let problem = "\(error)"
            let changed = state.withLock { state -> Bool in
                defer { state.redisProblem = problem; state.syncedSince = nil }
                return state.redisProblem != problem
            }
            if changed { logger.error("splitwise scheduler: \(problem) (\(settings.address.description))") }
            return
        }
        let now = Date().timeIntervalSince1970
        var nodes: [ClusterNode] = []
        let fields = replies[2].array ?? []
        for pair in stride(from: 0, to: fields.count - 1, by: 2) {
            guard let id = fields[pair].data.map({ String(decoding: $0, as: UTF8.self) }), let value = fields[pair + 1].data,
                  let info = try? JSONDecoder().decode(SchedulerNodeInfo.self, from: value) else { continue }
            nodes.append(ClusterNode(id: id, info: info))
        }
        let expire = settings.expirePeriod.seconds
        let clock = ContinuousClock.now
        let (recovered, judging, lostAttempts) = state.withLock { state -> (Bool, Bool, [(String, AsyncStream<ScheduledResult>.Continuation)]) in
            let recovered = state.redisProblem != nil
            state.redisProblem = nil
            state.queued = replies[1].integer ?? 0
            if state.syncedSince == nil {
                state.syncedSince = clock
                state.graceFloor = (state.lastGoodSync ?? now) - expire
            }
            state.lastGoodSync = now
            // After an outage every entry is old until its node publishes again: for one expire
            // period, nodes live before the outage stay live and no one is judged dead.
            let judging = clock - state.syncedSince! >= settings.expirePeriod
            let floor = judging ? now - expire : state.graceFloor
            state.nodes = nodes
            state.live = Set(nodes.filter { $0.info.ts >= floor || $0.id == nodeID }.map(\.id))
            var lost: [(String, AsyncStream<ScheduledResult>.Continuation)] = []
            if judging {
                for (id, attempt) in state.pending {
                    if let dead = attempt.nodes.first(where: { !state.live.contains($0) }) {
                        lost.append((dead, attempt.results))
                        _ = id
                    }
                }
            }
            return (recovered, judging, lost)
        }
        if recovered { logger.info("splitwise scheduler: Redis answers again (\(settings.address.description))") }
        for (dead, results) in lostAttempts {
            results.yield(ScheduledResult(kind: .error, requestID: "", node: dead, status: 502,
                                          message: "node \(dead) stopped publishing to the cluster (no heartbeat for over \(expire) s)"))
        }
        if judging { await rescueExpired(nodes: nodes, now: now) }
        releaseExpiredLoad()
    }

    /// Takes the legs waiting in dead nodes' queues (each RPOP goes to one rescuer only) and
    /// tells their placing instances to place them again; forgets nodes dead for long.
    private func rescueExpired(nodes: [ClusterNode], now: Double) async {
        let dead = nodes.filter { $0.id != nodeID && now - $0.info.ts > settings.expirePeriod.seconds }
        guard !dead.isEmpty else { return }
        var commands = dead.map { [Data("RPOP".utf8), Data(SchedulerKeys.requests(node: $0.id).utf8), Data("100".utf8)] }
        let forgotten = dead.filter { now - $0.info.ts > settings.clearExpiredNodesPeriod.seconds }
        if !forgotten.isEmpty {
            commands.append([Data("HDEL".utf8), Data(SchedulerKeys.cluster(topic: settings.topic).utf8)] + forgotten.map { Data($0.id.utf8) })
        }
        guard let replies = try? await self.commands.pipeline(commands) else { return }
        var rescued = 0
        for (node, reply) in zip(dead, replies) {
            for item in reply.array ?? [] {
                guard let data = item.data, let task = try? JSONDecoder().decode(ScheduledTask.self, from: data),
                      task.kind == .request else { continue }
                rescued += 1
                write(ScheduledResult(kind: .lost, requestID: task.requestID, node: node.id,
                                      message: "node \(node.id) stopped publishing before it took the request"), to: task.group)
            }
        }
        if rescued > 0 {
            metrics.recordLost(rescued)
            logger.warning("splitwise scheduler: took \(rescued) leg(s) out of the queues of dead node(s) \(dead.map(\.id))")
        }
    }

    private func releaseExpiredLoad() {
        let limit = settings.releaseLoadExpirePeriod
        let now = ContinuousClock.now
        let dropped = state.withLock { state -> [String] in
            let old = state.outstanding.filter { now - $0.value.since > limit }.map(\.key)
            for id in old { state.outstanding[id] = nil }
            return old
        }
        if !dropped.isEmpty { logger.warning("splitwise scheduler: released the load of \(dropped.count) leg(s) older than \(limit)") }
    }

    // MARK: legs placed here

    private func pullLoop(runner: @escaping TaskRunner) async {
        let key = SchedulerKeys.requests(node: nodeID)
        while !Task.isCancelled {
            let items: [Data]
            do {
                items = try await Self.popBatch(key, upTo: 50, from: taskReader)
            } catch {
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            for item in items {
                guard let task = try? JSONDecoder().decode(ScheduledTask.self, from: item) else {
                    logger.error("splitwise scheduler: an entry of \(key) is not a task: \(String(decoding: item.prefix(200), as: UTF8.self))")
                    continue
                }
                accept(task, runner: runner)
            }
        }
    }

    private func accept(_ task: ScheduledTask, runner: @escaping TaskRunner) {
        switch task.kind {
        case .abort:
            let running = state.withLock { $0.outstanding[task.requestID]?.task }
            running?.cancel()
        case .request:
            if Date().timeIntervalSince1970 - task.arrivalTime > settings.ttl.seconds {
                metrics.recordExpired()
                write(ScheduledResult(kind: .error, requestID: task.requestID, node: nodeID, status: 504,
                                      message: "request '\(task.requestID)' waited in the queue of node \(nodeID) for longer than --scheduler-ttl (\(settings.ttl))"),
                      to: task.group)
                return
            }
            let load = role == .decode ? 1 : max(task.promptTokenIDsLen, 1)
            let sink = ResultSink(scheduler: self, requestID: task.requestID, group: task.group)
            state.withLock { $0.outstanding[task.requestID] = (load, .now, nil) }
            let run = Task {
                await runner(task, sink)
                self.state.withLock { state in
                    state.outstanding[task.requestID] = nil
                    state.written[task.requestID] = nil
                }
            }
            state.withLock { state in
                if state.outstanding[task.requestID] != nil { state.outstanding[task.requestID]?.task = run }
            }
        }
    }

    // MARK: results

    /// Queues a result for the writer, which pushes batches with `LPUSH` and `EXPIRE ttl`.
    func write(_ result: ScheduledResult, to group: String) {
        guard let value = try? JSONEncoder().encode(result) else { return }
        state.withLock { $0.unwritten.append((group, value, .now)) }
        writerWake.yield()
    }

    private func writeLoop() async {
        let ttl = String(Int(settings.ttl.seconds.rounded(.up)))
        for await _ in writerWakes {
            while true {
                let batch = state.withLock { state -> [(key: String, value: Data, at: ContinuousClock.Instant)] in
                    defer { state.unwritten = [] }
                    return state.unwritten
                }
                if batch.isEmpty { break }
                var keys: [String] = []
                var values: [String: [Data]] = [:]
                for item in batch {
                    if values[item.key] == nil { keys.append(item.key) }
                    values[item.key, default: []].append(item.value)
                }
                var pipeline: [[Data]] = []
                for key in keys {
                    pipeline.append([Data("LPUSH".utf8), Data(key.utf8)] + values[key]!)
                    pipeline.append([Data("EXPIRE".utf8), Data(key.utf8), Data(ttl.utf8)])
                }
                do {
                    _ = try await commands.pipeline(pipeline)
                } catch {
                    // Redis away: keep what is younger than the ttl (in order) and try again.
                    let now = ContinuousClock.now
                    let ttl = settings.ttl
                    state.withLock { state in state.unwritten = batch.filter { now - $0.at < ttl } + state.unwritten }
                    try? await Task.sleep(for: .milliseconds(100))
                    if Task.isCancelled { return }
                }
            }
        }
    }

    /// Up to `count` entries from the tail of the list `key` (`RPOP key count`, Redis ≥ 6.2);
    /// when it is empty, waits up to a second for one (`BRPOP`), so an idle loop costs one
    /// round trip a second.
    private static func popBatch(_ key: String, upTo count: Int, from reader: RedisClient) async throws(RedisError) -> [Data] {
        let batch = try await reader.command(["RPOP", key, String(count)]).array?.compactMap(\.data) ?? []
        guard batch.isEmpty else { return batch }
        let popped = try await reader.command(["BRPOP", key, "1"]).array ?? []
        return popped.count == 2 ? [popped[1].data].compactMap { $0 } : []
    }

    private func readLoop() async {
        let key = SchedulerKeys.results(node: nodeID)
        while !Task.isCancelled {
            let items: [Data]
            do {
                items = try await Self.popBatch(key, upTo: 200, from: resultReader)
            } catch {
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            for item in items {
                guard let result = try? JSONDecoder().decode(ScheduledResult.self, from: item) else { continue }
                let attempt = state.withLock { $0.pending[result.requestID] }
                attempt?.results.yield(result)
            }
        }
    }
}

/// Where a leg running here reports its response; results go to the placing instance in order.
public struct ResultSink: Sendable {
    let scheduler: SplitwiseScheduler
    public let requestID: String
    let group: String

    public func send(_ kind: ScheduledResult.Kind, status: Int? = nil, contentType: String? = nil, data: Data? = nil,
                     message: String? = nil) {
        let sequence = scheduler.state.withLock { state -> Int in
            state.written[requestID, default: 0] += 1
            return state.written[requestID]!
        }
        scheduler.write(ScheduledResult(kind: kind, requestID: requestID, node: scheduler.nodeID, status: status,
                                        contentType: contentType, data: data, message: message, sequence: sequence), to: group)
    }
}
