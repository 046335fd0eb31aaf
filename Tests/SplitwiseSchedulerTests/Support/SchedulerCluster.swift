import Foundation
import Glibc
import Synchronization
import TestSupport

/// api-server instances sharing a real Redis through `--scheduler-name splitwise`.
enum SchedulerCluster {
    /// A prefill, decode or mixed instance in `topic`, with the ports its role needs.
    static func node(_ role: String, redis: RedisServerProcess, topic: String = "fd", extra: [String] = []) throws -> APIServerProcess {
        let ports = try freeLoopbackPorts(3)
        var arguments = ["--threads", "1", "--splitwise-role", role, "--engine-worker-queue-port", String(ports[0]),
                         "--num-gpu-blocks-override", "256", "--kv-transfer-timeout", "10"]
        if role == "decode" { arguments += ["--pd-comm-port", String(ports[1]), "--cache-queue-port", String(ports[2])] }
        return try APIServerProcess(arguments + redis.schedulerArguments(topic: topic) + extra)
    }

    static func nodeID(_ server: APIServerProcess) throws -> String {
        guard let id = try server.client.get("/get_server_info").json()?["scheduler_node_id"] as? String else {
            throw TestFailure("no scheduler_node_id in /get_server_info of port \(server.port)")
        }
        return id
    }

    /// The node ids `server` counts as live (its last sync of the cluster hash).
    static func liveNodes(_ server: APIServerProcess) throws -> Set<String> {
        let text = try server.client.get("/metrics").text
        return Set(text.split(separator: "\n").filter { $0.hasPrefix("tandem:scheduler_node_live{") && $0.hasSuffix(" 1") }
            .compactMap { line in line.split(separator: "\"").dropFirst().first.map(String.init) })
    }

    /// Waits until every server sees exactly `ids` as the live nodes.
    static func waitUntilFormed(_ servers: [APIServerProcess], ids: Set<String>) throws {
        for server in servers {
            try server.waitUntil("the cluster \(ids) is live") { try liveNodes(server) == ids }
        }
    }

    /// `server`'s count of a labelled metric line (e.g. placements on one node).
    static func metricLine(_ server: APIServerProcess, _ prefix: String) throws -> Double {
        let text = try server.client.get("/metrics").text
        return text.split(separator: "\n").filter { $0.hasPrefix(prefix) }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }
}

/// Greedy completions compared token by token (the tokens and log-probabilities the API
/// reports; prompts are token ids).
enum GreedyTokens {
    struct Tokens: Equatable, CustomStringConvertible, Sendable {
        var tokens: [String]
        var logprobs: [Double]
        var finishReason: String
        var description: String { "\(tokens) \(logprobs) \(finishReason)" }
    }

    /// A deterministic prompt of `length` token ids.
    static func prompt(_ length: Int, seed: Int) -> [Int] {
        var state = UInt64(seed * 7919 + length)
        return (0..<length).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return 300 + Int((state >> 33) % 20000)
        }
    }

    static func body(_ prompt: [Int], stream: Bool, maxTokens: Int) -> [String: Any] {
        ["prompt": prompt, "max_tokens": maxTokens, "temperature": 0, "logprobs": 1, "stream": stream]
    }

    /// Sends the prompt and reads its tokens; an error answer throws with its status and body.
    static func run(_ client: HTTPTestClient, _ prompt: [Int], stream: Bool, maxTokens: Int) throws -> Tokens {
        let response = try client.post("/v1/completions", json: body(prompt, stream: stream, maxTokens: maxTokens))
        return try stream ? tokens(ofStream: response) : tokens(ofCompletion: response)
    }

    struct Refused: Error, CustomStringConvertible {
        var status: Int
        var body: String
        var description: String { "\(status) \(body)" }
    }

    static func tokens(ofCompletion response: HTTPTestResponse) throws -> Tokens {
        guard response.status == 200, let choice = (response.json()?["choices"] as? [[String: Any]])?.first,
              let logprobs = choice["logprobs"] as? [String: Any] else {
            throw Refused(status: response.status, body: response.text)
        }
        return Tokens(tokens: logprobs["tokens"] as? [String] ?? [], logprobs: (logprobs["token_logprobs"] as? [Double]) ?? [],
                      finishReason: choice["finish_reason"] as? String ?? "")
    }

    static func tokens(ofStream response: HTTPTestResponse) throws -> Tokens {
        guard response.status == 200 else { throw Refused(status: response.status, body: response.text) }
        var result = Tokens(tokens: [], logprobs: [], finishReason: "")
        for event in response.events where event != "[DONE]" {
            let json = try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any]
            if json?["error"] != nil { throw Refused(status: 200, body: event) }
            for choice in json?["choices"] as? [[String: Any]] ?? [] {
                let logprobs = choice["logprobs"] as? [String: Any]
                result.tokens += logprobs?["tokens"] as? [String] ?? []
                result.logprobs += logprobs?["token_logprobs"] as? [Double] ?? []
                if let reason = choice["finish_reason"] as? String { result.finishReason = reason }
            }
        }
        guard response.events.last == "[DONE]" else { throw Refused(status: 200, body: "no [DONE]: \(response.text)") }
        return result
    }
}

/// Work started on other threads while the test goes on; `wait()` collects the results.
final class Background<T: Sendable>: Sendable {
    private let slots: ResultSlots<T>
    private let group = DispatchGroup()
    private let count: Int

    init(_ count: Int, _ body: @escaping @Sendable (Int) throws -> T) {
        self.count = count
        slots = ResultSlots(count)
        let slots = slots
        for index in 0..<count {
            group.enter()
            let group = group
            Thread.detachNewThread {
                let result = Result { try body(index) }
                slots.results.withLock { $0[index] = result }
                group.leave()
            }
        }
    }

    var started: Int { count }

    func wait() -> [Result<T, any Error>] {
        group.wait()
        return slots.results.withLock { $0 }.map { $0! }
    }
}
