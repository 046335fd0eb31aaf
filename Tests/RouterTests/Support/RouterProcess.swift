import Foundation
import TestSupport

/// A real `router` process on a free loopback port for one test, with quick health checks.
/// `stop()` sends SIGTERM and waits; a router still running at deinit is killed.
final class RouterProcess {
    static var binary: String { get throws { try BuiltProducts.path("router") } }

    let port: Int
    let process = Process()
    let logPath: String
    var client: HTTPTestClient { HTTPTestClient(port: port) }

    /// Starts `router --port P --health-check-interval 0.2 --health-check-timeout 1` plus
    /// `arguments`, and waits until `/liveness` answers.
    init(_ arguments: [String]) throws {
        port = try freeLoopbackPort()
        logPath = NSTemporaryDirectory() + "router-\(UUID().uuidString).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: try Self.binary)
        process.arguments = ["--port", String(port), "--health-check-interval", "0.2", "--health-check-timeout", "1"] + arguments
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()
        try waitUntil("/liveness answers") { (try? client.get("/liveness"))?.status == 200 }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: logPath)
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func waitUntil(_ what: String, _ condition: () throws -> Bool) throws {
        let held = try TestSupport.waitUntil { try !process.isRunning || condition() }
        guard process.isRunning else { throw HTTPTestError(description: "router exited (\(process.terminationStatus)) before \(what):\n\(log)") }
        guard held else { throw HTTPTestError(description: "not within \(patience): \(what)\n\(log)") }
    }

    /// Waits until `GET /workers` shows exactly `healthy` healthy workers.
    func waitForHealthyWorkers(_ healthy: Int) throws {
        try waitUntil("\(healthy) healthy workers") { try healthyWorkers() == healthy }
    }

    func healthyWorkers() throws -> Int {
        let response = try client.get("/workers")
        let workers = (try JSONSerialization.jsonObject(with: response.body) as? [[String: Any]]) ?? []
        return workers.filter { $0["healthy"] as? Bool == true }.count
    }

    /// A metric's value from GET /metrics (summed over its label sets).
    func metric(_ name: String) throws -> Double {
        let text = try client.get("/metrics").text
        return text.split(separator: "\n").filter { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    @discardableResult
    func stop() -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        TestSupport.waitUntil { !process.isRunning }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Greedy completions through any OpenAI endpoint, as the tests compare them.
enum Completions {
    struct Result: Equatable {
        var text: String
        var finishReason: String
        var completionTokens: Int?
    }

    static func body(_ prompt: String, maxTokens: Int, stream: Bool, chat: Bool = false) -> [String: Any] {
        var body: [String: Any] = ["max_tokens": maxTokens, "temperature": 0, "stream": stream]
        if chat { body["messages"] = [["role": "user", "content": prompt]] } else { body["prompt"] = prompt }
        if stream { body["stream_options"] = ["include_usage": true] }
        return body
    }

    static func run(_ client: HTTPTestClient, _ prompt: String, maxTokens: Int = 8, stream: Bool = false, chat: Bool = false,
                    headers: [String: String] = [:]) throws -> Result {
        let path = chat ? "/v1/chat/completions" : "/v1/completions"
        let response = try client.post(path, json: body(prompt, maxTokens: maxTokens, stream: stream, chat: chat), headers: headers)
        guard response.status == 200 else {
            throw HTTPTestError(description: "\(path) on \(client.port): \(response.status) \(response.text)")
        }
        return stream ? try parseStream(response) : try parseWhole(response)
    }

    static func parseWhole(_ response: HTTPTestResponse) throws -> Result {
        guard let json = response.json(), let choice = (json["choices"] as? [[String: Any]])?.first else {
            throw HTTPTestError(description: "not a completion: \(response.text)")
        }
        let text = choice["text"] as? String ?? (choice["message"] as? [String: Any])?["content"] as? String ?? ""
        return Result(text: text, finishReason: choice["finish_reason"] as? String ?? "",
                      completionTokens: (json["usage"] as? [String: Any])?["completion_tokens"] as? Int)
    }

    static func parseStream(_ response: HTTPTestResponse) throws -> Result {
        guard response.events.last == "[DONE]" else { throw HTTPTestError(description: "stream did not end with [DONE]: \(response.text)") }
        var result = Result(text: "", finishReason: "", completionTokens: nil)
        for event in response.events.dropLast() {
            guard let json = try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any] else { continue }
            if json["error"] != nil { throw HTTPTestError(description: "error event: \(event)") }
            for choice in json["choices"] as? [[String: Any]] ?? [] {
                result.text += choice["text"] as? String ?? (choice["delta"] as? [String: Any])?["content"] as? String ?? ""
                if let reason = choice["finish_reason"] as? String { result.finishReason = reason }
            }
            if let usage = json["usage"] as? [String: Any] { result.completionTokens = usage["completion_tokens"] as? Int }
        }
        return result
    }

    static func error(_ response: HTTPTestResponse) -> String { response.text }
}
