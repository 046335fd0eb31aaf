#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SystemCalls

/// One rank's log file, `<rank log dir>/worker.log`, rotated when it would grow past
/// `maxBytes`: worker.log → worker.log.1 → … → worker.log.<backups> (the oldest is dropped).
/// Shared by every incarnation of the rank (an old incarnation's output may still be
/// draining while the new one starts), hence the lock.
///
/// When the file cannot be reopened after a rotation, or a write fails (disk full), output
/// is dropped rather than stalling the worker, `problem` says why, and every later write
/// tries again; the first write that succeeds notes how many bytes were lost.
public final class RankLog: Sendable {
    public let path: String
    private let maxBytes: Int
    private let backups: Int
    private struct FileState {
        /// -1 while the file could not be reopened after a rotation.
        var fd: Int32
        var size: Int
        var problem: String?
        var droppedBytes = 0
    }
    private let file: Mutex<FileState>

    public init(directory: String, maxBytes: Int, backups: Int) throws(SupervisorError) {
        try makeDirectories(directory)
        path = directory + "/worker.log"
        self.maxBytes = max(1, maxBytes)
        self.backups = max(0, backups)
        do {
            let (fd, size) = try Self.openForAppending(path)
            file = Mutex(FileState(fd: fd, size: size))
        } catch {
            throw SupervisorError.io("cannot open \(path): \(error.reason)")
        }
    }

    deinit {
        file.withLock { state in
            if state.fd >= 0 { _ = Glibc.close(state.fd) }
        }
    }

    /// Why output is being dropped, while it is: "cannot reopen …/worker.log after rotation:
    /// Not a directory", "cannot write …/worker.log: No space left on device".
    public var problem: String? { file.withLock { $0.problem } }

    /// Appends `bytes`, rotating first whenever the file would pass the cap.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        file.withLock { state in
            if let problem = state.problem {
                // Try again, starting with a note on what was lost.
                var note = "[multi-api-server] \(state.droppedBytes) bytes of output were lost: \(problem)\n"
                let unwritten = note.withUTF8 { append(UnsafeRawBufferPointer($0), to: &state) }
                guard unwritten == 0 else {
                    state.droppedBytes += bytes.count
                    return
                }
                state.problem = nil
                state.droppedBytes = 0
            }
            state.droppedBytes += append(bytes, to: &state)
        }
    }

    /// Appends one line written by the supervisor itself (start, exit, kill reasons).
    public func note(_ line: String) {
        var text = "[multi-api-server] " + line + "\n"
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    /// Writes `bytes`, rotating whenever the file would pass the cap. Returns how many bytes
    /// could not be written (0 when all were); `state.problem` then says why.
    private func append(_ bytes: UnsafeRawBufferPointer, to state: inout FileState) -> Int {
        var remaining = bytes
        while !remaining.isEmpty {
            if state.fd < 0 {
                reopen(&state)
            } else if state.size >= maxBytes {
                rotate(&state)
            }
            guard state.fd >= 0 else { return remaining.count }
            if state.size >= maxBytes { continue } // Reopened a full file: rotate it first.
            let chunk = UnsafeRawBufferPointer(rebasing: remaining.prefix(maxBytes - state.size))
            do {
                let fd = state.fd
                let written = try systemCall("write") { Glibc.write(fd, chunk.baseAddress, chunk.count) }
                state.size += written
                remaining = UnsafeRawBufferPointer(rebasing: remaining.dropFirst(written))
            } catch {
                state.problem = "cannot write \(path): \(error.reason)"
                return remaining.count
            }
        }
        return 0
    }

    private func rotate(_ state: inout FileState) {
        _ = Glibc.close(state.fd)
        if backups > 0 {
            for index in stride(from: backups - 1, through: 1, by: -1) {
                _ = rename("\(path).\(index)", "\(path).\(index + 1)")
            }
            _ = rename(path, "\(path).1")
        }
        do {
            state.fd = try systemCall("open") { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644) }
            state.size = 0
        } catch {
            state.fd = -1
            state.problem = "cannot reopen \(path) after rotation: \(error.reason)"
        }
    }

    /// After a failed reopen: opens the file for appending again (without truncating: if the
    /// rotation's renames failed too, it still holds output that is yet to be rotated).
    private func reopen(_ state: inout FileState) {
        do {
            (state.fd, state.size) = try Self.openForAppending(path)
        } catch {
            state.problem = "cannot reopen \(path) after rotation: \(error.reason)"
        }
    }

    private static func openForAppending(_ path: String) throws(SystemCallError) -> (fd: Int32, size: Int) {
        let fd = try systemCall("open") { open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) }
        var info = stat()
        return (fd, fstat(fd, &info) == 0 ? Int(info.st_size) : 0)
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
