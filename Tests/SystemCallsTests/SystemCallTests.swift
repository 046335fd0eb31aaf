import Foundation
import Glibc
import SystemCalls
import Testing

@Suite struct SystemCallTests {
    @Test func aCallInterruptedBySignalsIsRetriedUntilItCompletes() throws {
        var calls = 0
        let result = try systemCall("read") { () -> Int in
            calls += 1
            guard calls == 3 else {
                errno = EINTR
                return -1
            }
            return 42
        }
        #expect(result == 42)
        #expect(calls == 3)
    }

    @Test func aFailureIsThrownOnceWithTheCallsNameAndErrno() {
        var calls = 0
        #expect(throws: SystemCallError(call: "open", errno: ENOENT)) {
            try systemCall("open") { () -> Int32 in
                calls += 1
                return open("/nonexistent-tandem-path/file", O_RDONLY)
            }
        }
        #expect(calls == 1)
        #expect(SystemCallError(call: "open", errno: ENOENT).description == "open: No such file or directory")
        #expect(SystemCallError(call: "open", errno: ENOENT).reason == "No such file or directory")
    }

    @Test func writeAllWritesEveryByteAndNamesTheFailedCall() throws {
        let path = NSTemporaryDirectory() + "tandem-writeall-\(UUID().uuidString)"
        defer { unlink(path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        try #require(fd >= 0)
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0) }
        try writeAll(fd, bytes)
        close(fd)
        #expect(FileManager.default.contents(atPath: path) == Data(bytes))

        let readOnly = open(path, O_RDONLY)
        defer { close(readOnly) }
        #expect(throws: SystemCallError(call: "write", errno: EBADF)) {
            try writeAll(readOnly, bytes)
        }
    }

    @Test func durationsInSeconds() {
        #expect(Duration.seconds(8).inSeconds == 8)
        #expect(Duration.milliseconds(1500).inSeconds == 1.5)
        #expect(Duration.nanoseconds(1).inSeconds == 1e-9)
        #expect(Duration.seconds(-2).inSeconds == -2)
        #expect(Duration.zero.inSeconds == 0)
    }
}
