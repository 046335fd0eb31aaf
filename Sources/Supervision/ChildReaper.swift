#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SystemCalls

/// Collects one child the moment it exits: a blocking `waitpid` on that pid alone, on a
/// thread of its own, so a dead worker is noticed at once rather than at the next health
/// probe. Waiting only for the supervisor's own pids leaves every other child of the process
/// (another Supervisor's, one that Foundation's `Process` started) to whoever started it.
enum ChildReaper {
    static func watch(_ pid: pid_t, onExit: @escaping @Sendable (WorkerExit) -> Void) {
        let thread = Thread {
            var status: Int32 = 0
            do throws(SystemCallError) {
                _ = try systemCall("waitpid") { waitpid(pid, &status, 0) }
                onExit(WorkerExit(waitStatus: status))
            } catch {
                onExit(.unknown(reason: error.description))
            }
        }
        thread.name = "tandem-reaper"
        thread.start()
    }
}
