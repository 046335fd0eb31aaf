import FleetPlanning
import Foundation
import Glibc
import SystemCalls
import Testing

/// The stand-in worker (`tandem-test-worker`) that the supervisor's tests spawn: it must
/// honour the flags the planner produces and its fault controls. It is built next to this
/// test bundle.
@Suite(.serialized) struct TestWorkerTests {
    let binary = URL(fileURLWithPath: FleetPlanner.runningExecutablePath()).deletingLastPathComponent()
        .appendingPathComponent("tandem-test-worker").path

    func start(_ arguments: [String], rank: Int? = nil) throws -> Child {
        var environment = ProcessInfo.processInfo.environment
        environment["TANDEM_RANK"] = rank.map(String.init)
        return try Child(binary, arguments, environment: environment)
    }

    func freePorts(_ count: Int) throws -> [Int] {
        let fleet = try FleetPlanner(system: HostSystem(root: "/nonexistent", allowedCPUs: { Array(0..<count) }), environment: [:],
                                     executablePath: "/usr/bin/multi-api-server")
            .plan(SupervisorOptions.parse(["--worker-binary", "/bin/true", "--num-servers", String(count), "--numa-bind", "none"]))
        return fleet.ranks.map(\.ports.api)
    }

    /// GET over a plain socket; the status code, or nil when nothing answers in time.
    func status(_ port: Int, _ path: String, timeout: Int = 2) -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 12 else { return nil }
        return Int(String(decoding: buffer[9..<12], as: UTF8.self))
    }

    func waitForStatus(_ port: Int, _ expected: Int?, within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if status(port, "/health", timeout: 1) == expected { return true }
            usleep(20_000)
        }
        return false
    }

    @Test func servesHealthAfterItsStartupDelayAndBindsEveryPort() throws {
        let ports = try freePorts(7)
        let worker = try start(["--port", "\(ports[0])", "--metrics-port", "\(ports[1])", "--engine-worker-queue-port", "\(ports[2])",
                                "--cache-queue-port", "\(ports[3])", "--pd-comm-port", "\(ports[4])",
                                "--rdma-comm-ports", "\(ports[5]),\(ports[6])", "--local-data-parallel-id", "0",
                                "--startup-delay", "0.5"])
        defer { _ = worker.stop() }
        #expect(waitForStatus(ports[0], 503, within: 2))
        #expect(waitForStatus(ports[0], 200, within: 2))
        #expect(status(ports[1], "/metrics") == 200)
        #expect(status(ports[0], "/nothing") == 404)
        let prober = PortProber.live(host: "127.0.0.1")
        #expect(ports.allSatisfy { !prober.isFree($0) })
    }

    /// Repeated because the signal lands on whichever thread is running; a handler that
    /// only works on the main thread fails some of the time.
    @Test func sigtermExitsZero() throws {
        for _ in 0..<8 {
            let port = try freePorts(1)[0]
            let worker = try start(["--port", "\(port)", "--metrics-port", "\(try freePorts(1)[0])"])
            #expect(waitForStatus(port, 200, within: 2))
            #expect(worker.stop() == .exited(0))
        }
    }

    @Test func aFloodingWorkerStillAnswers() throws {
        let port = try freePorts(1)[0]
        let flooding = try start(["--port", "\(port)", "--flood-log"])
        defer { _ = flooding.stop() }
        for _ in 0..<5 {
            #expect(waitForStatus(port, 200, within: 2))
        }
        #expect(flooding.isRunning)
    }

    @Test func unknownFlagsAndExitCodeFault() throws {
        let unknown = try start(["--bogus"])
        #expect(unknown.wait() == .exited(78))
        let told = try start(["--exit-code", "3"])
        #expect(told.wait() == .exited(3))
        // --fault-rank limits faults to one rank.
        let port = try freePorts(1)[0]
        let spared = try start(["--port", "\(port)", "--exit-code", "3", "--fault-rank", "1"], rank: 0)
        defer { _ = spared.stop() }
        #expect(waitForStatus(port, 200, within: 2))
    }

    @Test func crashAndHangFaults() throws {
        let crashing = try start(["--crash-after", "0.2"])
        #expect(crashing.wait() == .exited(1))
        let port = try freePorts(1)[0]
        let hanging = try start(["--port", "\(port)", "--hang-after", "0.3"])
        defer { _ = hanging.stop() }
        #expect(waitForStatus(port, 200, within: 2))
        #expect(waitForStatus(port, nil, within: 3))
        #expect(hanging.isRunning)
    }
}

/// A child process started with posix_spawn and reaped with waitpid, so its exit is read
/// exactly (Foundation's Process can report the status before it is final).
final class Child {
    enum End: Equatable {
        case exited(Int32)
        case signaled(Int32)
    }

    let pid: pid_t
    private var end: End?

    init(_ path: String, _ arguments: [String], environment: [String: String]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        let status = posix_spawn(&pid, path, &actions, nil, argv, envp)
        guard status == 0 else { throw PlanningError("posix_spawn \(path) failed: \(status)") }
        self.pid = pid
    }

    var isRunning: Bool {
        guard end == nil else { return false }
        return reap(options: WNOHANG) == nil
    }

    func wait() -> End {
        if let end { return end }
        return reap(options: 0)!
    }

    /// SIGTERM, then the exit.
    func stop() -> End {
        if end == nil { kill(pid, SIGTERM) }
        return wait()
    }

    private func reap(options: Int32) -> End? {
        var status: Int32 = 0
        guard let result = try? systemCall("waitpid", { waitpid(pid, &status, options) }), result == pid else { return nil }
        let reaped: End = status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
        end = reaped
        return reaped
    }
}
