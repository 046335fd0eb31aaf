import FleetPlanning
import Foundation
import Glibc
import SystemCalls
import Testing
import TestSupport

/// The stand-in worker (`tandem-test-worker`) that the supervisor's tests spawn: it must
/// honour the flags the planner produces and its fault controls.
@Suite(.serialized) struct TestWorkerTests {
    func start(_ arguments: [String], rank: Int? = nil) throws -> Child {
        var environment = ProcessInfo.processInfo.environment
        environment["TANDEM_RANK"] = rank.map(String.init)
        return try Child(try BuiltProducts.path("tandem-test-worker"), arguments, environment: environment)
    }

    /// The status of GET `path`, or nil when nothing answers in time.
    func status(_ port: Int, _ path: String, timeout: Duration = .seconds(2)) -> Int? {
        httpGet(port: port, path: path, timeout: timeout)?.status
    }

    /// Waits until GET /health answers `expected` (nil: does not answer).
    func waitForStatus(_ port: Int, _ expected: Int?) -> Bool {
        waitUntil { status(port, "/health", timeout: .seconds(1)) == expected }
    }

    /// Loading (503) for as long as the delay lasts, here longer than any test, with every
    /// port bound.
    @Test func loadsDuringItsStartupDelayAndBindsEveryPort() throws {
        let ports = try freeLoopbackPorts(7)
        let worker = try start(["--port", "\(ports[0])", "--metrics-port", "\(ports[1])", "--engine-worker-queue-port", "\(ports[2])",
                                "--cache-queue-port", "\(ports[3])", "--pd-comm-port", "\(ports[4])",
                                "--rdma-comm-ports", "\(ports[5]),\(ports[6])", "--local-data-parallel-id", "0",
                                "--startup-delay", "3600"])
        defer { _ = worker.stop() }
        #expect(waitForStatus(ports[0], 503))
        #expect(status(ports[1], "/metrics") == 200)
        #expect(status(ports[0], "/nothing") == 404)
        let prober = PortProber.live(host: "127.0.0.1")
        #expect(ports.allSatisfy { !prober.isFree($0) })
    }

    /// Healthy (200) once the delay is over, and not before: no answer received sooner than
    /// the delay after the start is 200 (the worker's clock starts after ours).
    @Test func servesHealthOnceItsStartupDelayIsOver() throws {
        let port = try freeLoopbackPort()
        let delay: Duration = .milliseconds(500)
        let started = ContinuousClock.now
        let worker = try start(["--port", "\(port)", "--startup-delay", "0.5"])
        defer { _ = worker.stop() }
        var early: [Duration] = []
        let healthy = waitUntil {
            let answer = status(port, "/health", timeout: .seconds(1))
            if answer == 200, ContinuousClock.now - started < delay { early.append(ContinuousClock.now - started) }
            return answer == 200
        }
        #expect(healthy)
        #expect(early.isEmpty, "healthy \(early) after the start, before its \(delay) delay")
    }

    /// Repeated because the signal lands on whichever thread is running; a handler that
    /// only works on the main thread fails some of the time.
    @Test func sigtermExitsZero() throws {
        for _ in 0..<8 {
            let port = try freeLoopbackPort()
            let worker = try start(["--port", "\(port)", "--metrics-port", "\(try freeLoopbackPort())"])
            #expect(waitForStatus(port, 200))
            #expect(worker.stop() == .exited(0))
        }
    }

    @Test func aFloodingWorkerStillAnswers() throws {
        let port = try freeLoopbackPort()
        let flooding = try start(["--port", "\(port)", "--flood-log"])
        defer { _ = flooding.stop() }
        for _ in 0..<5 {
            #expect(waitForStatus(port, 200))
        }
        #expect(flooding.isRunning)
    }

    @Test func unknownFlagsAndExitCodeFault() throws {
        let unknown = try start(["--bogus"])
        #expect(unknown.wait() == .exited(78))
        let told = try start(["--exit-code", "3"])
        #expect(told.wait() == .exited(3))
        // --fault-rank limits faults to one rank.
        let port = try freeLoopbackPort()
        let spared = try start(["--port", "\(port)", "--exit-code", "3", "--fault-rank", "1"], rank: 0)
        defer { _ = spared.stop() }
        #expect(waitForStatus(port, 200))
    }

    @Test func crashAndHangFaults() throws {
        let crashing = try start(["--crash-after", "0.2"])
        #expect(crashing.wait() == .exited(1))
        // Serving until the hang (here later than any test), then silent but alive.
        let port = try freeLoopbackPort()
        let later = try start(["--port", "\(port)", "--hang-after", "3600"])
        defer { _ = later.stop() }
        #expect(waitForStatus(port, 200))
        let hangingPort = try freeLoopbackPort()
        let hanging = try start(["--port", "\(hangingPort)", "--hang-after", "0.3"])
        defer { _ = hanging.stop() }
        // Listening (bound) yet not answering: connections are accepted by the kernel, no reply comes.
        #expect(waitUntil { !PortProber.live(host: "127.0.0.1").isFree(hangingPort) })
        #expect(waitForStatus(hangingPort, nil))
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
