import Foundation
import PDProtocol

/// A request the receiving instance could not get answered: the HTTP status and the OpenAI
/// error's message, type and code.
public struct SchedulerFailure: Error, Sendable, Equatable {
    public var status: Int
    public var message: String
    public var type: String
    public var code: String

    public init(status: Int, message: String, type: String = "scheduler_error", code: String) {
        self.status = status
        self.message = message
        self.type = type
        self.code = code
    }
}

/// The answer to a placed request, as the decode (or mixed) leg gave it.
public struct DispatchedResponse: Sendable {
    public var status: Int
    public var contentType: String
    /// The whole body (not streamed), or the body's pieces as they arrive (streamed).
    public var body: Body

    public enum Body: Sendable {
        case complete(Data)
        case stream(AsyncStream<Data>)
    }
}

extension SplitwiseScheduler {
    /// Places a client's request (`route`, its JSON `body`) on the cluster and waits for its
    /// answer: the whole response when not streamed, the head once the first piece arrives when
    /// streamed. A failure before any output (a leg refused or failed, a node died, a leg was
    /// rescued from a dead node's queue) places it again elsewhere, up to `maxAttempts`;
    /// no answer within the ttl is an error, never a hang.
    public func dispatch(route: String, body: Data, promptTokens: Int, choices: Int, stream: Bool) async throws(SchedulerFailure) -> DispatchedResponse {
        guard let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            throw SchedulerFailure(status: 400, message: "The request body is not a JSON object.", type: "invalid_request_error", code: "invalid_json")
        }
        let baseID = "sched-" + UUID().uuidString.lowercased()
        let deadline = ContinuousClock.now + settings.ttl
        var excluded: Set<String> = []
        var lastFailure: String?
        for attempt in 0..<settings.maxAttempts {
            if attempt > 0 { metrics.recordRetry() }
            var generator = SystemRandomNumberGenerator()
            guard let placement = PlacementPolicy.place(promptTokens: promptTokens, nodes: liveNodes, excluding: excluded, using: &generator) else {
                break
            }
            if case .disaggregated = placement, choices != 1 {
                throw SchedulerFailure(status: 400, message: "n must be 1 for prefill-decode requests (got \(choices)).",
                                       type: "invalid_request_error", code: "invalid_value")
            }
            let id = attempt == 0 ? baseID : "\(baseID)-retry\(attempt)"
            let outcome = try await run(placement, id: id, route: route, json: json, promptTokens: promptTokens, stream: stream,
                                        deadline: deadline)
            switch outcome {
            case .answered(let response):
                return response
            case .retry(let why, let blame):
                lastFailure = why
                excluded.formUnion(blame)
                logger.warning("splitwise scheduler: request \(id) failed before any output (\(why)); placing it again")
            }
        }
        if let lastFailure {
            throw SchedulerFailure(status: 502, message: "The request failed on every placement tried (\(settings.maxAttempts) at most): \(lastFailure)",
                                   type: "scheduler_error", code: "placement_failed")
        }
        if let problem {
            throw SchedulerFailure(status: 503, message: "The splitwise scheduler cannot place requests: \(problem).", code: "redis_unavailable")
        }
        throw SchedulerFailure(status: 503, message: "No live instance in scheduler topic '\(settings.topic)' can take the request (it needs a mixed instance, or a prefill and a decode instance).",
                               code: "no_instance")
    }

    enum AttemptOutcome {
        case answered(DispatchedResponse)
        case retry(String, blame: Set<String>)
    }

    private func run(_ placement: Placement, id: String, route: String, json: [String: Any], promptTokens: Int, stream: Bool,
                     deadline: ContinuousClock.Instant) async throws(SchedulerFailure) -> AttemptOutcome {
        let group = SchedulerKeys.results(node: nodeID)
        let now = Date().timeIntervalSince1970
        var tasks: [(node: ClusterNode, task: ScheduledTask)] = []
        do {
            switch placement {
            case .mixed(let node):
                tasks = [(node, ScheduledTask(kind: .request, requestID: id, role: .mixed, route: route,
                                              body: try JSONSerialization.data(withJSONObject: json), group: group,
                                              promptTokenIDsLen: promptTokens, arrivalTime: now))]
            case .disaggregated(let prefill, let decode, let transfer):
                func leg(_ role: SplitwiseRole) throws -> Data {
                    let info = DisaggregateInfo(role: role, requestID: id, prefill: prefill.info.disaggregated.endpoint,
                                                decode: decode.info.disaggregated.endpoint, transferProtocol: transfer)
                    var body = json
                    body["disaggregate_info"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(info))
                    if role == .prefill {
                        body["stream"] = false
                        body["stream_options"] = nil
                    }
                    return try JSONSerialization.data(withJSONObject: body)
                }
                // D first, as FastDeploy: D reserves blocks before P's handshake arrives.
                tasks = [(decode, ScheduledTask(kind: .request, requestID: id, role: .decode, route: route, body: try leg(.decode),
                                                group: group, promptTokenIDsLen: promptTokens, arrivalTime: now)),
                         (prefill, ScheduledTask(kind: .request, requestID: id, role: .prefill, route: route, body: try leg(.prefill),
                                                 group: group, promptTokenIDsLen: promptTokens, arrivalTime: now))]
            }
        } catch {
            throw SchedulerFailure(status: 400, message: "The request body cannot be placed: \(error)", type: "invalid_request_error", code: "invalid_json")
        }
        let (results, continuation) = AsyncStream.makeStream(of: ScheduledResult.self)
        state.withLock { $0.pending[id] = PendingAttempt(results: continuation, nodes: placement.nodes.map(\.id)) }
        let watchdog = Task {
            try await Task.sleep(until: deadline, clock: .continuous)
            self.metrics.recordExpired()
            continuation.yield(ScheduledResult(kind: .error, requestID: id, node: "", status: 504,
                                               message: "No result for request '\(id)' within --scheduler-ttl (\(self.settings.ttl))."))
        }
        let finish: @Sendable (_ abort: Bool) -> Void = { abort in
            watchdog.cancel()
            let known = self.state.withLock { $0.pending.removeValue(forKey: id) != nil }
            continuation.finish()
            if abort && known { self.abort(id, on: placement.nodes.map(\.id)) }
        }
        do {
            let encoded = try tasks.map { ($0.node.id, try JSONEncoder().encode($0.task)) }
            _ = try await commands.pipeline(encoded.map { [Data("LPUSH".utf8), Data(SchedulerKeys.requests(node: $0.0).utf8), $0.1] })
            metrics.recordRequestCommands(1)
        } catch {
            finish(false)
            throw SchedulerFailure(status: 503, message: "The splitwise scheduler cannot place requests: \(error).", code: "redis_unavailable")
        }
        metrics.recordPlacement(placement)
        bumpLoad(of: placement, promptTokens: promptTokens)

        var attempt = AttemptState(placement: placement, stream: stream)
        var iterator = results.makeAsyncIterator()
        while let item = await iterator.next() {
            switch attempt.apply(item) {
            case .wait:
                continue
            case .fail(let failure):
                finish(true)
                throw failure
            case .retry(let why, let blame):
                finish(true)
                return .retry(why, blame: blame)
            case .complete(let status, let contentType, let data):
                finish(false)
                return .answered(DispatchedResponse(status: status, contentType: contentType, body: .complete(data)))
            case .startStream(let status, let contentType, let first):
                let (body, bodyContinuation) = AsyncStream.makeStream(of: Data.self)
                bodyContinuation.yield(first)
                // The relay reads the rest of the same stream (this iterator is not used again).
                let relay = Task { [attempt] in
                    var attempt = attempt
                    for await item in results {
                        switch attempt.streaming(item) {
                        case .data(let data): bodyContinuation.yield(data)
                        case .wait: continue
                        case .end(let tail):
                            if let tail { bodyContinuation.yield(tail) }
                            bodyContinuation.finish()
                            finish(false)
                            return
                        }
                    }
                    bodyContinuation.finish()
                }
                bodyContinuation.onTermination = { termination in
                    if case .cancelled = termination {
                        relay.cancel()
                        finish(true)
                    }
                }
                return .answered(DispatchedResponse(status: status, contentType: contentType, body: .stream(body)))
            }
        }
        finish(true)
        return .retry("the result stream of request '\(id)' ended", blame: [])
    }

    /// Between two syncs, the chosen nodes count the request in this instance's view, so a
    /// burst does not all go to the node that was least loaded at the last sync.
    private func bumpLoad(of placement: Placement, promptTokens: Int) {
        state.withLock { state in
            for chosen in placement.nodes {
                guard let index = state.nodes.firstIndex(where: { $0.id == chosen.id }) else { continue }
                state.nodes[index].info.load += chosen.info.role == .decode ? 1 : max(promptTokens, 1)
            }
        }
    }

    /// Asks the nodes of a failed or abandoned attempt to abort its legs.
    func abort(_ id: String, on nodes: [String]) {
        let group = SchedulerKeys.results(node: nodeID)
        let now = Date().timeIntervalSince1970
        Task {
            let commands = nodes.compactMap { node -> [Data]? in
                guard let task = try? JSONEncoder().encode(ScheduledTask(kind: .abort, requestID: id, group: group, arrivalTime: now)) else { return nil }
                return [Data("LPUSH".utf8), Data(SchedulerKeys.requests(node: node).utf8), task]
            }
            _ = try? await self.commands.pipeline(commands)
        }
    }
}

/// What the results of one placed attempt mean so far: a pure state machine, so the rules are
/// readable (and testable) apart from Redis.
struct AttemptState {
    let placement: Placement
    let stream: Bool
    var head: (status: Int, contentType: String)?
    var collected = Data()
    var decided = false
    /// The last sequence number read per node: an item written twice is read once.
    var lastSequence: [String: Int] = [:]

    /// False for an item already read (its batch was written again after a lost reply).
    mutating func isNew(_ item: ScheduledResult) -> Bool {
        guard let sequence = item.sequence else { return true }
        if sequence <= lastSequence[item.node, default: 0] { return false }
        lastSequence[item.node] = sequence
        return true
    }

    enum Step {
        case wait
        case fail(SchedulerFailure)
        case retry(String, blame: Set<String>)
        case complete(status: Int, contentType: String, Data)
        case startStream(status: Int, contentType: String, first: Data)
    }

    enum StreamStep {
        case wait
        case data(Data)
        /// The stream ends, after an SSE error event when the leg failed mid-way.
        case end(Data?)
    }

    init(placement: Placement, stream: Bool) {
        self.placement = placement
        self.stream = stream
    }

    private var answeringNode: String {
        switch placement {
        case .mixed(let node): node.id
        case .disaggregated(_, let decode, _): decode.id
        }
    }

    private static func retryable(_ status: Int) -> Bool { status >= 500 || status == 408 || status == 429 }

    mutating func apply(_ item: ScheduledResult) -> Step {
        guard isNew(item) else { return .wait }
        switch item.kind {
        case .prefill:
            guard let status = item.status, status != 200 else { return .wait }
            let text = String(decoding: item.data ?? Data(), as: UTF8.self)
            if !Self.retryable(status) {
                return .complete(status: status, contentType: "application/json", item.data ?? Data())
            }
            let blame = text.contains("\"pd_decode_failed\"") ? answeringNode : item.node
            return .retry("the prefill leg on node \(item.node) answered HTTP \(status): \(text.prefix(300))", blame: [blame])
        case .head:
            head = (item.status ?? 500, item.contentType ?? "application/json")
            return .wait
        case .data:
            guard let head else { return .wait }
            if head.status == 200 && stream {
                decided = true
                return .startStream(status: head.status, contentType: head.contentType, first: item.data ?? Data())
            }
            collected.append(item.data ?? Data())
            return .wait
        case .end:
            let head = head ?? (500, "application/json")
            if head.status == 200 || !Self.retryable(head.status) {
                return .complete(status: head.status, contentType: head.contentType, collected)
            }
            return .retry("node \(item.node) answered HTTP \(head.status): \(String(decoding: collected.prefix(300), as: UTF8.self))",
                          blame: [item.node])
        case .error:
            if item.status == 504 {
                return .fail(SchedulerFailure(status: 504, message: item.message ?? "the request expired", code: "scheduler_ttl_expired"))
            }
            return .retry(item.message ?? "node \(item.node) failed", blame: item.node.isEmpty ? [] : [item.node])
        case .lost:
            return .retry(item.message ?? "node \(item.node) is gone", blame: [item.node])
        }
    }

    /// After the head of a streamed response went to the client: only its body, its end, or an
    /// error that ends it.
    mutating func streaming(_ item: ScheduledResult) -> StreamStep {
        guard isNew(item) else { return .wait }
        switch item.kind {
        case .data: return .data(item.data ?? Data())
        case .end: return .end(nil)
        case .error, .lost:
            let message = item.message ?? "node \(item.node) failed"
            let error = ["error": ["message": "The request failed after its first tokens: \(message)", "type": "scheduler_error",
                                   "code": item.status == 504 ? "scheduler_ttl_expired" : "leg_failed"]]
            let json = (try? JSONSerialization.data(withJSONObject: error)) ?? Data()
            return .end(Data("data: ".utf8) + json + Data("\n\n".utf8))
        case .prefill, .head: return .wait
        }
    }
}
