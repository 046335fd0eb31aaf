#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SystemCalls

/// One rank's log file, `<rank log dir>/worker.log`, rotated when it would grow past
/// `maxBytes`: worker.log → worker.log.1 → … → worker.log.<backups> (the oldest is dropped).
/// Shared by every incarnation of the rank (an old incarnation's output may still be
/// draining while the new one starts), hence the lock.
public final class RankLog: Sendable {
    public let path: String
    private let maxBytes: Int
    private let backups: Int
    private struct FileState {
        var fd: Int32
        var size: Int
    }
    private let file: Mutex<FileState>

    public init(directory: String, maxBytes: Int, backups: Int) throws(SupervisorError) {
        try makeDirectories(directory)
        path = directory + "/worker.log"
        self.maxBytes = max(1, maxBytes)
        self.backups = max(0, backups)
        let fd: Int32
        do {
            fd = try systemCall("open") { open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) }
        } catch {
            throw SupervisorError.io("cannot open \(path): \(error.reason)")
        }
        var st = stat()
        let size = fstat(fd, &st) == 0 ? Int(st.st_size) : 0
        file = Mutex(FileState(fd: fd, size: size))
    }

    deinit {
        file.withLock { state in
            if state.fd >= 0 { _ = Glibc.close(state.fd) }
        }
    }

    /// Appends `bytes`, rotating first whenever the file would pass the cap.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        file.withLock { state in
            var remaining = bytes
            while !remaining.isEmpty, state.fd >= 0 {
                if state.size >= maxBytes { rotate(&state) }
                let room = maxBytes - state.size
                let chunk = UnsafeRawBufferPointer(rebasing: remaining.prefix(room))
                let fd = state.fd
                // Disk full or similar: drop output rather than stall the worker.
                guard let written = try? systemCall("write", { Glibc.write(fd, chunk.baseAddress, chunk.count) }) else { return }
                state.size += written
                remaining = UnsafeRawBufferPointer(rebasing: remaining.dropFirst(written))
            }
        }
    }

    /// Appends one line written by the supervisor itself (start, exit, kill reasons).
    public func note(_ line: String) {
        var text = "[multi-api-server] " + line + "\n"
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    private func rotate(_ state: inout FileState) {
        _ = Glibc.close(state.fd)
        if backups > 0 {
            for index in stride(from: backups - 1, through: 1, by: -1) {
                _ = rename("\(path).\(index)", "\(path).\(index + 1)")
            }
            _ = rename(path, "\(path).1")
        }
        state.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        state.size = 0
    }
}

/// `mkdir -p`.
func makeDirectories(_ path: String) throws(SupervisorError) {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
        prefix += component
        do {
            _ = try systemCall("mkdir") { mkdir(prefix, 0o755) }
        } catch where error.errno != EEXIST {
            throw SupervisorError.io("cannot create directory \(prefix): \(error.reason)")
        } catch {}
        prefix += "/"
    }
}
