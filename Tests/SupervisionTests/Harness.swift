import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport

/// A free TCP port on 127.0.0.1 (bind to port 0, read it back, close).
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A listening socket on `port` that the test holds (to make a port "already taken").
final class PortHolder {
    let fd: Int32
    init?(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else { close(fd); return nil }
    }
    deinit { close(fd) }
}

struct HTTPReply {
    var status: Int
    var body: String
}

/// A minimal HTTP/1.0 GET over a plain socket, bounded by `timeout` seconds (nil on any
/// connection error or timeout).
func httpGet(port: Int, path: String, timeout: Double = 5) -> HTTPReply? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return nil }
    let request = "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    guard request.withCString({ send(fd, $0, strlen($0), 0) }) > 0 else { return nil }
    var data = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count > 0 { data += buffer[0..<count] } else if count == 0 { break } else { return nil }
    }
    let text = String(decoding: data, as: UTF8.self)
    guard let statusLine = text.split(separator: "\r\n").first else { return nil }
    let fields = statusLine.split(separator: " ")
    guard fields.count >= 2, let status = Int(fields[1]) else { return nil }
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return HTTPReply(status: status, body: body)
}

func processExists(_ pid: Int) -> Bool {
    // A zombie still "exists" for kill(0); read the state instead.
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
    return !status.contains("State:\tZ")
}

/// Pids of live processes whose environment carries `TANDEM_TEST_FLEET=<tag>` (how a test
/// finds every process of its fleet, even after the supervisor is gone).
func fleetProcesses(tag: String) -> [Int] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int.init).filter { pid in
        guard let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
        return environ.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "TANDEM_TEST_FLEET=\(tag)" }
            && processExists(pid)
    }
}

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

    init(arguments: [String], controlPort: Int = freePort(), workerBinary: String? = nil,
         environment extra: [String: String] = [:]) throws {
        self.controlPort = controlPort
        logDirectory = NSTemporaryDirectory() + "tandem-fleet-\(tag.prefix(8))"
        stderrPath = logDirectory + ".stderr"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: try BuiltProducts.path("multi-api-server"))
        process.arguments = ["--control-port", "\(controlPort)", "--log-dir", logDirectory,
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

    func health() -> HTTPReply? { httpGet(port: controlPort, path: "/health", timeout: 5) }

    /// `/ranks` decoded as loose JSON objects.
    func ranks() -> [[String: Any]] {
        guard let reply = httpGet(port: controlPort, path: "/ranks", timeout: 5), reply.status == 200,
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
