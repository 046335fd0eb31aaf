#if canImport(Glibc)
import Glibc
#endif
import CSpawn
import FleetPlanning
import SystemCalls

/// Starting and signalling one worker process (one incarnation of a rank).
enum WorkerProcess {
    /// Variables the supervisor must not pass on: they describe the supervisor's own systemd
    /// contract (notify socket, watchdog, socket activation), not the worker's.
    static func isSupervisorOnly(_ name: String) -> Bool {
        name == "NOTIFY_SOCKET" || name.hasPrefix("WATCHDOG_") || name.hasPrefix("LISTEN_")
    }

    /// The worker's environment: the supervisor's own, minus the systemd variables, plus the
    /// rank's variables from the plan.
    static func environment(for rank: RankPlan, inherited: [String: String]) -> [String: String] {
        var result = inherited.filter { !isSupervisorOnly($0.key) }
        for (key, value) in rank.environment { result[key] = value }
        return result
    }

    /// Forks and execs `binary` for `rank` on the spawner thread (see cspawn.h). Returns the
    /// pid (also the process group id) and the read end of the worker's output pipe.
    static func spawn(binary: String, rank: RankPlan, environment: [String: String]) throws(SupervisorError) -> (pid: pid_t, output: Int32) {
        var pipeFds: [Int32] = [-1, -1]
        do {
            _ = try systemCall("pipe2") { tandem_pipe_cloexec(&pipeFds) }
        } catch {
            throw .spawn(rank: rank.rank, message: "cannot create the log pipe: \(error.reason)")
        }
        let argv = [binary] + rank.arguments
        let envp = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let cpus = (rank.cpus ?? []).map(Int32.init)
        let nodes = (rank.numaNodes ?? []).map(Int32.init)

        var pid: pid_t = 0
        var message = [CChar](repeating: 0, count: 512)
        let result = withCStringArray(argv) { argvPointer in
            withCStringArray(envp) { envPointer in
                cpus.withUnsafeBufferPointer { cpuBuffer in
                    nodes.withUnsafeBufferPointer { nodeBuffer in
                        binary.withCString { path in
                            var request = tandem_spawn_request(
                                path: path, argv: argvPointer, envp: envPointer, output_fd: pipeFds[1],
                                cpus: cpuBuffer.baseAddress, cpu_count: cpuBuffer.count,
                                numa_nodes: nodeBuffer.baseAddress, node_count: nodeBuffer.count)
                            return tandem_spawn(&request, &pid, &message, message.count)
                        }
                    }
                }
            }
        }
        _ = close(pipeFds[1])
        guard result == 0 else {
            _ = close(pipeFds[0])
            throw .spawn(rank: rank.rank, message: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return (pid, pipeFds[0])
    }

    /// Sends `signal` to the worker's whole process group (it may have children of its own).
    static func signalGroup(_ pid: pid_t, _ signal: Int32) {
        if kill(-pid, signal) != 0 { _ = kill(pid, signal) }
    }
}

/// Calls `body` with a NULL-terminated C array of the strings (valid only during the call).
private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// How a worker process ended, decoded from its wait status (never from a description).
public enum WorkerExit: Equatable, Sendable, CustomStringConvertible {
    /// It called exit: WIFEXITED, with WEXITSTATUS.
    case exited(status: Int32)
    /// A signal ended it: WIFSIGNALED, with WTERMSIG.
    case signaled(signal: Int32)
    /// A wait status that is neither (not expected from a blocking waitpid).
    case other(waitStatus: Int32)
    /// The status could not be collected.
    case unknown(reason: String)

    public init(waitStatus status: Int32) {
        if tandem_exited(status) != 0 {
            self = .exited(status: tandem_exit_status(status))
        } else if tandem_signaled(status) != 0 {
            self = .signaled(signal: tandem_term_signal(status))
        } else {
            self = .other(waitStatus: status)
        }
    }

    /// The status it exited with; nil when it did not exit by itself.
    public var exitStatus: Int? {
        if case .exited(let status) = self { Int(status) } else { nil }
    }

    /// "exit status 78", "signal 9 (SIGKILL)".
    public var description: String {
        switch self {
        case .exited(let status): "exit status \(status)"
        case .signaled(let signal): "signal \(signal)\(Self.signalNames[signal].map { " (\($0))" } ?? "")"
        case .other(let status): "wait status \(status)"
        case .unknown(let reason): "exit not collected (\(reason))"
        }
    }

    private static let signalNames: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGABRT: "SIGABRT",
        SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGPIPE: "SIGPIPE",
        SIGTERM: "SIGTERM",
    ]
}
