import ModelStore
import Foundation
import Synchronization

/// A real OpenAI-compatible server process on a loopback port for one test: normally
/// `api-server` serving the default model (the first init), or any other server such as
/// llama.cpp's (`init(executable:arguments:port:)`). Its output goes to a log file. `stop()`
/// sends SIGTERM (a drain) and waits; a server still running at deinit is killed.
public final class APIServerProcess {
    public static var binary: String { get throws { try BuiltProducts.path("api-server") } }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public let port: Int
    public let process = Process()
    public let logPath: String
    public var client: HTTPTestClient { HTTPTestClient(port: port) }
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts api-server with `arguments` (after `--port` and `--threads 2`) and waits until
    /// /health is 200.
    public convenience init(_ arguments: [String] = [], environment: [String: String] = [:], port: Int? = nil,
                            waitUntilHealthy: Bool = true) throws {
        let binary = try Self.binary
        _ = try requireModel(at: DefaultModel.path())
        let port = try port ?? freeLoopbackPort()
        try self.init(executable: binary, arguments: ["--port", String(port), "--threads", "2"] + arguments, port: port,
                      environment: environment)
        if waitUntilHealthy { try waitUntil("/health is 200") { (try? client.get("/health"))?.status == 200 } }
    }

    /// Starts `executable` with `arguments`, which make it listen on 127.0.0.1:`port`; returns
    /// at once.
    public init(executable: String, arguments: [String], port: Int, environment: [String: String] = [:]) throws {
        self.port = port
        logPath = NSTemporaryDirectory() + "\(URL(fileURLWithPath: executable).lastPathComponent)-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        try process.run()
        try? log.close()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: logPath)
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Polls `condition` until it holds, for at most `seconds`.
    public func waitUntil(_ what: String, seconds: Double = 120, _ condition: () throws -> Bool) throws {
        var exited = false
        let held = try TestSupport.waitUntil(deadline: .now + .seconds(seconds)) {
            exited = !process.isRunning
            return try exited || condition()
        }
        if try exited && !condition() {
            throw Failure(description: "\(process.executableURL?.lastPathComponent ?? "the server") exited (\(process.terminationStatus)) before \(what):\n\(log)")
        }
        guard held else { throw Failure(description: "not within \(seconds) s: \(what)\n\(log)") }
    }

    /// Sends SIGTERM and returns the exit status (SIGKILL after `seconds`).
    @discardableResult
    public func stop(seconds: Double = 60) -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        return waitForExit(seconds: seconds)
    }

    public func waitForExit(seconds: Double = 60) -> Int32 {
        TestSupport.waitUntil(deadline: .now + .seconds(seconds)) { !process.isRunning }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// The engine's load from GET /load.
    public func load() throws -> [String: Int] {
        let response = try client.get("/load")
        guard response.status == 200, let json = response.json() else {
            throw Failure(description: "GET /load: \(response.status) \(response.text)")
        }
        return json.compactMapValues { $0 as? Int }
    }

    /// Waits until no request runs or waits and every KV block is free again.
    public func waitUntilIdle(seconds: Double = 1) throws {
        try waitUntil("nothing running and every KV block free", seconds: seconds) {
            let load = try self.load()
            return load["runningRequests"] == 0 && load["waitingRequests"] == 0 && load["kvBlocksUsed"] == 0
                && load["kvBlocksFree"] == load["kvBlocksTotal"]
        }
    }

    /// A metric's value from GET /metrics (summed over its label sets).
    public func metric(_ name: String) throws -> Double {
        let text = try client.get("/metrics").text
        return text.split(separator: "\n").filter { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }
}

/// Runs `body` for each index on its own thread (truly concurrent clients; blocking sockets
/// must not sit on Swift's cooperative pool) and returns the results in order.
public func concurrently<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
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

public final class ResultSlots<T: Sendable>: Sendable {
    public let results: Mutex<[Result<T, any Error>?]>
    public init(_ count: Int) { results = Mutex(Array(repeating: nil, count: count)) }
}
