import Foundation
import Glibc
import SplitwiseScheduler
import TestSupport

/// A real `redis-server` (Debian's, from scripts/install-deps.sh) on a free loopback port,
/// nothing saved to disk, for one test; killed when the test lets go of it.
final class RedisServerProcess {
    let port: Int
    let password: String?
    private let process = Process()
    private let directory: String

    /// On `port` (nil: a free one; a port given again restarts "the same" Redis, empty).
    init(password: String? = nil, port: Int? = nil) throws {
        let candidates = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestFailure("redis-server is not installed: run `bash scripts/install-deps.sh` (Debian redis-server)")
        }
        self.port = try port ?? freeLoopbackPort()
        self.password = password
        directory = NSTemporaryDirectory() + "tandem-redis-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: binary)
        var arguments = ["--port", String(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory,
                         "--daemonize", "no"]
        if let password { arguments += ["--requirepass", password] }
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let address = self.address
        let up = waitUntil { Self.answers(address) }
        guard up else { throw TestFailure("redis-server on port \(self.port) did not answer PING") }
    }

    deinit {
        resume()
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    var address: RedisAddress { RedisAddress(host: "127.0.0.1", port: port, password: password) }

    /// The flags that point an api-server at this Redis.
    func schedulerArguments(topic: String, syncPeriodMs: Int = 50, expirePeriodMs: Int = 1500) -> [String] {
        ["--scheduler-name", "splitwise", "--scheduler-host", "127.0.0.1", "--scheduler-port", String(port),
         "--scheduler-topic", topic, "--scheduler-sync-period", String(syncPeriodMs), "--scheduler-expire-period", String(expirePeriodMs)]
            + (password.map { ["--scheduler-password", $0] } ?? [])
    }

    /// SIGSTOP: Redis stops answering (connections stay open, as a hung server's do).
    func pause() { kill(process.processIdentifier, SIGSTOP) }
    func resume() { kill(process.processIdentifier, SIGCONT) }

    /// One command through `redis-cli` (Debian redis-tools, installed with redis-server): the
    /// reply's lines, as an operator reads them. A child process, not the async client, so that
    /// synchronous test code never blocks a cooperative thread waiting for a task.
    func cli(_ arguments: [String]) throws -> [String] {
        try Self.cli(address, arguments)
    }

    static func cli(_ address: RedisAddress, _ arguments: [String]) throws -> [String] {
        var flags = ["-h", address.host, "-p", String(address.port)]
        if let password = address.password { flags += ["-a", password, "--no-auth-warning"] }
        let result = try runProcess("/usr/bin/redis-cli", flags + arguments)
        guard result.status == 0 else { throw TestFailure("redis-cli \(arguments): \(result.stderr)") }
        return result.stdout.split(separator: "\n").map(String.init)
    }

    static func answers(_ address: RedisAddress) -> Bool {
        (try? cli(address, ["PING"])) == ["PONG"]
    }
}
