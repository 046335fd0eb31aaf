import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport

/// A datagram socket the test sets as NOTIFY_SOCKET, collecting sd_notify messages.
final class NotifySocket: Sendable {
    let path: String
    private let fd: Int32

    init() {
        path = NSTemporaryDirectory() + "tandem-notify-\(UUID().uuidString.prefix(8)).sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    private let received = Mutex<[String]>([])

    /// Every message received so far, one entry per line (a datagram may carry several).
    func messages() -> [String] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var new: [String] = []
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            new += String(decoding: buffer[0..<count], as: UTF8.self).split(separator: "\n").map(String.init)
        }
        return received.withLock { all in
            all += new
            return all
        }
    }
}

/// A running multi-api-server under test. Everything it started is killed when the test
/// ends, even on failure (`terminate()` in a defer).
final class Fleet {
    let tag = UUID().uuidString
    let process = Process()
    let controlPort: Int
    let logDirectory: String
    private let stderrPath: String

    init(arguments: [String], controlPort: Int? = nil, workerBinary: String? = nil,
         environment extra: [String: String] = [:]) throws {
        self.controlPort = try controlPort ?? freeLoopbackPort()
        logDirectory = NSTemporaryDirectory() + "tandem-fleet-\(tag.prefix(8))"
        stderrPath = logDirectory + ".stderr"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: try BuiltProducts.path("multi-api-server"))
        process.arguments = ["--control-port", "\(self.controlPort)", "--log-dir", logDirectory,
                             "--worker-binary", try workerBinary ?? BuiltProducts.path("tandem-test-worker")] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["TANDEM_TEST_FLEET"] = tag
        environment.removeValue(forKey: "NOTIFY_SOCKET")
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        process.standardOutput = FileHandle(forWritingAtPath: stderrPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        try process.run()
    }

    var pid: Int { Int(process.processIdentifier) }
    var output: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Waits for the supervisor to exit; its status, or nil when it does not.
    func waitForExit() -> Int32? {
        guard waitUntil({ !process.isRunning }) else { return nil }
        return process.terminationStatus
    }

    func health() -> HTTPReply? { httpGet(port: controlPort, path: "/health") }

    /// `/ranks` decoded as loose JSON objects.
    func ranks() -> [[String: Any]] {
        guard let reply = httpGet(port: controlPort, path: "/ranks"), reply.status == 200,
              let json = try? JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [[String: Any]] else { return [] }
        return json
    }

    func rank(_ index: Int) -> [String: Any]? { ranks().first { $0["rank"] as? Int == index } }
    func state(_ index: Int) -> String? { rank(index)?["state"] as? String }
    func pid(ofRank index: Int) -> Int? { rank(index)?["pid"] as? Int }
    func apiPort(ofRank index: Int) -> Int? { (rank(index)?["ports"] as? [String: Any])?["api"] as? Int }

    func waitAllReady(count: Int) -> Bool {
        waitUntil {
            let all = ranks()
            return all.count == count && all.allSatisfy { $0["state"] as? String == "ready" }
        }
    }

    /// Kills the supervisor and anything of its fleet still alive.
    func terminate() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        waitUntil(deadline: .now + .seconds(5)) { fleetProcesses(tag: tag).isEmpty }
        for pid in fleetProcesses(tag: tag) { kill(pid_t(pid), SIGKILL) }
        try? FileManager.default.removeItem(atPath: logDirectory)
        try? FileManager.default.removeItem(atPath: stderrPath)
    }
}
