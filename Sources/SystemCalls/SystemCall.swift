#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A system call that failed: its name and errno.
public struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The call's name as the caller gave it: "open", "waitpid".
    public var call: String
    public var errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// The failure of `call` that the thread's current errno describes (for calls that do not
    /// return -1, such as mmap).
    public static func current(_ call: String) -> SystemCallError {
        SystemCallError(call: call, errno: errnoValue())
    }

    /// strerror's text: "No such file or directory".
    public var reason: String { String(cString: strerror(errno)) }

    /// "open: No such file or directory".
    public var description: String { "\(call): \(reason)" }
}

/// Runs `body`, a system call that returns -1 (or any negative value) and sets errno when
/// it fails, again for as long as it fails with EINTR; any other failure is thrown with the
/// call's name. Modelled on SwiftNIO's `syscall(blocking:)`.
@inlinable
public func systemCall<Result: SignedInteger>(_ call: String, _ body: () -> Result) throws(SystemCallError) -> Result {
    while true {
        let result = body()
        if result >= 0 { return result }
        let code = errnoValue()
        if code != EINTR { throw SystemCallError(call: call, errno: code) }
    }
}

/// Writes every byte of `bytes` to `fd`, retrying short writes and EINTR.
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemCallError) {
    var offset = 0
    while offset < bytes.count {
        offset += try systemCall("write") { write(fd, bytes.baseAddress! + offset, bytes.count - offset) }
    }
}

/// Writes every byte of `bytes` to `fd`, retrying short writes and EINTR.
public func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemCallError) {
    // The failure is carried out of the closure as a value: a closure with a typed throws
    // passed to withUnsafeBytes crashes the Swift 6.3 optimizer.
    let failure = bytes.withUnsafeBytes { buffer -> SystemCallError? in
        do throws(SystemCallError) {
            try writeAll(fd, buffer)
            return nil
        } catch {
            return error
        }
    }
    if let failure { throw failure }
}

@usableFromInline
func errnoValue() -> Int32 { errno }
