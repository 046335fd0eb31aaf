#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SystemCalls

/// Copies one worker incarnation's stdout/stderr pipe into its rank's log on a thread of its
/// own, so a flooding worker only ever blocks itself (on a full pipe), never the supervisor's
/// health and restart loop. The thread ends when every writer of the pipe is gone.
enum LogPump {
    static func start(readingFrom fd: Int32, into log: RankLog) {
        let thread = Thread {
            let capacity = 64 * 1024
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            defer {
                buffer.deallocate()
                _ = Glibc.close(fd)
            }
            while let count = try? systemCall("read", { read(fd, buffer, capacity) }), count > 0 {
                log.write(UnsafeRawBufferPointer(start: buffer, count: count))
            }
        }
        thread.name = "tandem-log-pump"
        thread.start()
    }
}
