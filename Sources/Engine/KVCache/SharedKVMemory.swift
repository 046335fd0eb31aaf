import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// KV cache storage in a shared-memory file, so that a prefill instance on the same host can
/// map it and copy its KV straight into this instance's blocks (PD `ipc`: one copy).
/// The file is unlinked at once: it lives as long as this process holds it open (no leftover in
/// /dev/shm after a crash), and peers open it as `/proc/<pid>/fd/<fd>`.
public final class SharedKVMemory: Sendable {
    // Sendable: the fields are immutable; the memory itself is written by the engine and by
    // peers under the block reservations the engine hands out.
    public let path: String
    public let byteCount: Int
    /// Different for every mapping: peers cache their mapping under it.
    public let instanceID: String
    nonisolated(unsafe) let base: UnsafeMutableRawPointer
    private let descriptor: Int32

    init(byteCount: Int) throws {
        instanceID = UUID().uuidString
        let name = "/dev/shm/tandem-kv-\(getpid())-\(instanceID)"
        let fd = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw EngineError.invalidCacheLayout("cannot create the shared KV cache \(name): \(String(cString: strerror(errno)))") }
        unlink(name)
        guard ftruncate(fd, off_t(byteCount)) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw EngineError.invalidCacheLayout("cannot size the shared KV cache to \(byteCount) bytes: \(reason)")
        }
        guard let mapped = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw EngineError.invalidCacheLayout("cannot map the shared KV cache: \(reason)")
        }
        base = mapped
        descriptor = fd
        self.byteCount = byteCount
        path = "/proc/\(getpid())/fd/\(fd)"
    }

    deinit {
        munmap(base, byteCount)
        close(descriptor)
    }
}
