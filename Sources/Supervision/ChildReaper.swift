import CSpawn
import Foundation

/// Collects every exited child the moment it exits (blocking waitpid on a thread of its
/// own), so a dead worker is noticed at once rather than at the next health probe.
enum ChildReaper {
    static func start(_ onExit: @escaping @Sendable (_ pid: Int32, _ status: Int32) -> Void) {
        let thread = Thread {
            while true {
                var status: Int32 = 0
                let pid = tandem_wait_any_child(&status)
                onExit(pid, status)
            }
        }
        thread.name = "tandem-reaper"
        thread.start()
    }
}
