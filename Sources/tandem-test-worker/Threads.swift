import Glibc
import SystemCalls

/// Runs `body` on its own detached POSIX thread (the worker links nothing but Glibc, so it
/// starts in milliseconds).
func startThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { context in
        let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
        box.body()
        return nil
    }, context)
    guard status == 0 else {
        writeError("tandem-test-worker: cannot start a thread (error \(status))")
        _exit(1)
    }
    pthread_detach(thread)
}

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

func sleepSeconds(_ seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var remaining = timespec()
    // Interrupted: sleep what is left.
    _ = try? systemCall("nanosleep") {
        let result = nanosleep(&request, &remaining)
        request = remaining
        return result
    }
}

/// Parks the calling thread for good.
func sleepForever() -> Never {
    while true { sleepSeconds(3600) }
}

func writeLine(_ line: String) { try? writeAll(STDOUT_FILENO, Array((line + "\n").utf8)) }
func writeError(_ line: String) { try? writeAll(STDERR_FILENO, Array((line + "\n").utf8)) }

/// The SIGTERM/SIGINT handler. It lives here, not in main.swift, because a closure written
/// in top-level code is main-actor isolated and Swift traps when a signal runs it on
/// another thread.
func exitZeroOnSignal(_: Int32) {
    _exit(0)
}
