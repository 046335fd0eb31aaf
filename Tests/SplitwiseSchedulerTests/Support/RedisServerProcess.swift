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

    init(password: String? = nil) throws {
        let candidates = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestFailure("redis-server is not installed: run `bash scripts/install-deps.sh` (Debian redis-server)")
        }
        port = try freeLoopbackPort()
        self.password = password
        directory = NSTemporaryDirectory() + "tandem-redis-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: binary)
        var arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory,
                         "--daemonize", "no"]
        if let password { arguments += ["--requirepass", password] }
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let address = self.address
        let up = waitUntil { Self.answers(address) }
        guard up else { throw TestFailure("redis-server on port \(port) did not answer PING") }
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

    /// One command through the scheduler's own client, from a plain thread.
    func command(_ arguments: [String]) throws -> RedisReply {
        try Self.blocking(address) { try await $0.command(arguments) }
    }

    static func answers(_ address: RedisAddress) -> Bool {
        (try? blocking(address) { try await $0.command(["PING"]) }) == .status("PONG")
    }

    private static func blocking(_ address: RedisAddress, _ body: @escaping @Sendable (RedisClient) async throws -> RedisReply) throws -> RedisReply {
        let client = RedisClient(address: address, timeout: .seconds(2), label: "test")
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { box.set(.success(try await body(client))) } catch { box.set(.failure(error)) }
            done.signal()
        }
        done.wait()
        return try box.get()
    }

    private final class ResultBox: @unchecked Sendable {
        // @unchecked Sendable: written once by the task before it signals the semaphore, read
        // once by the waiting thread after it.
        private var result: Result<RedisReply, any Error> = .failure(TestFailure("no result"))
        func set(_ value: Result<RedisReply, any Error>) { result = value }
        func get() throws -> RedisReply { try result.get() }
    }
}
