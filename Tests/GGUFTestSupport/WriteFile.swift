#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import GGUF
import SystemCalls

/// Writes `bytes` to a new file at `path` (replacing one that exists).
func writeFile(_ bytes: [UInt8], to path: String) throws {
    let fd: Int32
    do {
        fd = try systemCall("open") { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
    } catch {
        throw GGUFError.invalidWrite("cannot create '\(path)': \(error.reason)")
    }
    defer { close(fd) }
    do {
        try SystemCalls.writeAll(fd, bytes)
    } catch {
        throw GGUFError.invalidWrite("cannot write '\(path)': \(error.reason)")
    }
}
