import Foundation
import PDProtocol
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Lets a decode instance D take back its shared-memory blocks from an ipc peer P that stopped
/// (SIGSTOP) or hangs, without waiting for it: D cannot revoke a mapping, so every copy P makes
/// into D's blocks happens under a lease. D's lease file (in /dev/shm, unlinked at once) holds
/// one 8-byte slot per reservation in flight: the reservation's generation while P may write,
/// 0 once D revoked it. P copies one layer's blocks holding an open-file-description lock on
/// the slot's bytes and only if the slot still holds its generation; D revokes by taking the
/// same lock and writing 0. So after `revoke` returns, P writes nothing more into those blocks;
/// `revoke` waits only for a copy under way (a P stopped in the middle of one keeps the
/// reservation's blocks until it runs again or dies: the kernel drops a dead process's locks).
final class IPCLeaseTable: Sendable {
    // Sendable: the descriptor and path are immutable; slots are handed out under `free`.
    let path: String
    private let descriptor: Int32
    private let free: Mutex<(slots: [Int], nextGeneration: UInt64)>

    init(slots: Int) throws {
        let name = "/dev/shm/tandem-kv-leases-\(getpid())-\(UUID().uuidString)"
        let fd = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TransferError("cannot create the ipc lease file \(name): \(String(cString: strerror(errno)))") }
        unlink(name)
        guard ftruncate(fd, off_t(8 * slots)) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw TransferError("cannot size the ipc lease file to \(slots) slots: \(reason)")
        }
        descriptor = fd
        path = "/proc/\(getpid())/fd/\(fd)"
        free = Mutex((Array((0..<slots).reversed()), 1))
    }

    deinit { close(descriptor) }

    /// A slot for a new reservation, holding a generation never used before; nil when every
    /// slot is taken.
    func grant() -> IPCLease? {
        let granted = free.withLock { state -> (slot: Int, generation: UInt64)? in
            guard let slot = state.slots.popLast() else { return nil }
            defer { state.nextGeneration += 1 }
            return (slot, state.nextGeneration)
        }
        guard let granted else { return nil }
        IPCLeaseLock.write(granted.generation, slot: granted.slot, fd: descriptor)
        return IPCLease(path: path, slot: granted.slot, generation: granted.generation)
    }

    /// Ends the lease: once this returns, the peer writes nothing more under it.
    func revoke(_ lease: IPCLease) {
        IPCLeaseLock.lock(slot: lease.slot, fd: descriptor, wait: true)
        IPCLeaseLock.write(0, slot: lease.slot, fd: descriptor)
        IPCLeaseLock.unlock(slot: lease.slot, fd: descriptor)
        free.withLock { $0.slots.append(lease.slot) }
    }
}

/// The slot lock both sides take (Linux open-file-description locks on the slot's 8 bytes).
enum IPCLeaseLock {
    // From <fcntl.h> (Linux, every architecture); not exported by the Glibc module.
    private static let setLock: Int32 = 37  // F_OFD_SETLK
    private static let setLockWait: Int32 = 38  // F_OFD_SETLKW

    /// True once locked; without `wait`, false if the other side holds it.
    @discardableResult
    static func lock(slot: Int, fd: Int32, wait: Bool) -> Bool {
        var request = region(slot, type: F_WRLCK)
        while fcntl(fd, wait ? setLockWait : setLock, &request) != 0 {
            if errno != EINTR { return false }
        }
        return true
    }

    static func unlock(slot: Int, fd: Int32) {
        var request = region(slot, type: F_UNLCK)
        while fcntl(fd, setLock, &request) != 0 && errno == EINTR {}
    }

    static func read(slot: Int, fd: Int32) -> UInt64 {
        var value: UInt64 = 0
        let n = pread(fd, &value, 8, off_t(8 * slot))
        return n == 8 ? UInt64(littleEndian: value) : 0
    }

    static func write(_ value: UInt64, slot: Int, fd: Int32) {
        var stored = value.littleEndian
        _ = pwrite(fd, &stored, 8, off_t(8 * slot))
    }

    private static func region(_ slot: Int, type: Int32) -> flock {
        var request = flock()
        request.l_type = Int16(type)
        request.l_whence = Int16(SEEK_SET)
        request.l_start = off_t(8 * slot)
        request.l_len = 8
        request.l_pid = 0  // required for open-file-description locks
        return request
    }
}
