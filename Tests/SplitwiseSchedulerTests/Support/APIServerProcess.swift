import ModelStore
import Foundation
import Synchronization
import TestSupport

/// (A copy of ServingTests' APIServerProcess, as RouterTests has one: test targets cannot share
/// files, and TestSupport links no model code.)
/// A real `api-server` process on a free loopback port, serving the default model, for one
/// test. `stop()` sends SIGTERM (a drain) and waits; a server still running at deinit is killed.
final class APIServerProcess {
    static var binary: String { get throws { try BuiltProducts.path("api-server") } }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let port: Int
    let process = Process()
    let logPath: String
    var client: HTTPTestClient { HTTPTestClient(port: port) }

    /// Starts the server with `arguments` (plus `--port`) and waits until /health is 200.
    init(_ arguments: [String] = [], environment: [String: String] = [:], port: Int? = nil,
         waitUntilHealthy: Bool = true) throws {
        let binary = try Self.binary
        _ = try requireModel(at: DefaultModel.path())
        self.port = try port ?? freeLoopbackPort()
        logPath = NSTemporaryDirectory() + "api-server-\(UUID().uuidString).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--port", String(self.port), "--threads", "2"] + arguments
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        try process.run()
        try? log.close()
        if waitUntilHealthy { try waitUntil("/health is 200") { (try? client.get("/health"))?.status == 200 } }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: logPath)
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Polls `condition` until it holds, for at most `seconds`.
    func waitUntil(_ what: String, seconds: Double = 120, _ condition: () throws -> Bool) throws {
        var exited = false
        let held = try TestSupport.waitUntil(deadline: .now + .seconds(seconds)) {
            exited = !process.isRunning
            return try exited || condition()
        }
        if try exited && !condition() {
            throw Failure(description: "api-server exited (\(process.terminationStatus)) before \(what):\n\(log)")
        }
        guard held else { throw Failure(description: "not within \(seconds) s: \(what)\n\(log)") }
    }

    /// Sends SIGTERM and returns the exit status (SIGKILL after `seconds`).
    @discardableResult
    func stop(seconds: Double = 60) -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        return waitForExit(seconds: seconds)
    }

    func waitForExit(seconds: Double = 60) -> Int32 {
        TestSupport.waitUntil(deadline: .now + .seconds(seconds)) { !process.isRunning }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// The engine's load from GET /load.
    func load() throws -> [String: Int] {
        let response = try client.get("/load")
        guard response.status == 200, let json = response.json() else {
            throw Failure(description: "GET /load: \(response.status) \(response.text)")
        }
        return json.compactMapValues { $0 as? Int }
    }

    /// Waits until no request runs or waits and every KV block is free again.
    func waitUntilIdle(seconds: Double = 1) throws {
        try waitUntil("nothing running and every KV block free", seconds: seconds) {
            let load = try self.load()
            return load["runningRequests"] == 0 && load["waitingRequests"] == 0 && load["kvBlocksUsed"] == 0
                && load["kvBlocksFree"] == load["kvBlocksTotal"]
        }
    }

    /// A metric's value from GET /metrics (summed over its label sets).
    func metric(_ name: String) throws -> Double {
        let text = try client.get("/metrics").text
        return text.split(separator: "\n").filter { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }
}

/// Runs `body` for each index on its own thread (truly concurrent clients; blocking sockets
/// must not sit on Swift's cooperative pool) and returns the results in order.
func concurrently<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
    let slots = ResultSlots<T>(count)
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        Thread.detachNewThread {
            let result = Result { try body(index) }
            slots.results.withLock { $0[index] = result }
            group.leave()
        }
    }
    group.wait()
    return try slots.results.withLock { $0 }.map { try $0!.get() }
}

final class ResultSlots<T: Sendable>: Sendable {
    let results: Mutex<[Result<T, any Error>?]>
    init(_ count: Int) { results = Mutex(Array(repeating: nil, count: count)) }
}
