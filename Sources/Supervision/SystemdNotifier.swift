import CSystemd

/// The supervisor's side of systemd's notify protocol (Type=notify): readiness, status
/// lines, watchdog keep-alives, start-timeout extensions and stopping. Every call is a no-op
/// when NOTIFY_SOCKET is unset (not under systemd).
struct SystemdNotifier: Sendable {
    /// Half of WatchdogSec when the watchdog is enabled for this process, else nil.
    let watchdogInterval: Duration?

    init() {
        var usec: UInt64 = 0
        // unset_environment = 0: the variables are removed from children at spawn time
        // instead (WorkerProcess.environment), and stay readable here.
        if sd_watchdog_enabled(0, &usec) > 0, usec > 0 {
            watchdogInterval = .microseconds(Int64(usec / 2))
        } else {
            watchdogInterval = nil
        }
    }

    func ready() { send("READY=1") }
    func status(_ line: String) { send("STATUS=\(line)") }
    func watchdog() { send("WATCHDOG=1") }
    func stopping() { send("STOPPING=1") }
    func extendTimeout(_ duration: Duration) {
        let usec = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
        send("EXTEND_TIMEOUT_USEC=\(usec)")
    }

    private func send(_ message: String) {
        _ = sd_notify(0, message)
    }
}
