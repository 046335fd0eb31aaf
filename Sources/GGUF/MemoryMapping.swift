#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SystemCalls

/// A whole file mapped read-only into memory. The pages stay in the page cache and are
/// shared by every process that maps the same file: weights are never copied.
/// `@unchecked Sendable` is safe: the mapping is read-only (PROT_READ), never changes after
/// init, and is unmapped only in deinit, when no reference to it remains.
final class MemoryMapping: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer

    init(path: String) throws {
        let fd: Int32
        var info = stat()
        do {
            fd = try systemCall("open") { open(path, O_RDONLY | O_CLOEXEC) }
        } catch {
            throw GGUFError.cannotOpen(path: path, reason: error.reason)
        }
        defer { close(fd) }
        do {
            _ = try systemCall("fstat") { fstat(fd, &info) }
        } catch {
            throw GGUFError.cannotOpen(path: path, reason: error.reason)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw GGUFError.cannotOpen(path: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        if size == 0 {
            // mmap rejects empty ranges; an empty file is reported as truncated by the parser.
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), address != MAP_FAILED else {
            throw GGUFError.cannotOpen(path: path, reason: "mmap failed: " + SystemCallError.current("mmap").reason)
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
