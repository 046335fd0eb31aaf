import Foundation
import Supervision
import Testing

@Suite struct RankLogTests {
    @Test func rotatesAtTheCapAndKeepsTheConfiguredBackups() throws {
        let directory = NSTemporaryDirectory() + "ranklog-\(UUID().uuidString)/log_0"
        defer { try? FileManager.default.removeItem(atPath: directory + "/..") }
        let log = try RankLog(directory: directory, maxBytes: 1000, backups: 2)
        let line = Array(repeating: UInt8(ascii: "x"), count: 99) + [UInt8(ascii: "\n")]
        for _ in 0..<45 { line.withUnsafeBytes { log.write($0) } } // 4500 bytes
        let size = { (name: String) in (try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)[.size] as? Int) ?? nil }
        #expect(size("worker.log") == 500)
        #expect(size("worker.log.1") == 1000)
        #expect(size("worker.log.2") == 1000)
        #expect(size("worker.log.3") == nil)
    }

    @Test func reopensAnExistingLogAndAppends() throws {
        let directory = NSTemporaryDirectory() + "ranklog-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let first = try RankLog(directory: directory, maxBytes: 1 << 20, backups: 1)
            first.note("one")
        }
        let second = try RankLog(directory: directory, maxBytes: 1 << 20, backups: 1)
        second.note("two")
        let text = try String(contentsOfFile: second.path, encoding: .utf8)
        #expect(text == "[multi-api-server] one\n[multi-api-server] two\n")
    }

    @Test func unwritableDirectoryIsAClearError() {
        #expect(throws: SupervisorError.io("cannot create directory /proc/tandem-no: No such file or directory")) {
            _ = try RankLog(directory: "/proc/tandem-no/log_0", maxBytes: 100, backups: 1)
        }
    }
}

@Suite struct RankLogProblemTests {
    @Test func aLogThatCannotBeReopenedAfterRotationIsReportedAndRetried() throws {
        let parent = NSTemporaryDirectory() + "ranklog-\(UUID().uuidString)"
        let directory = parent + "/log_0"
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let log = try RankLog(directory: directory, maxBytes: 1000, backups: 1)
        let write = { (byte: Character, count: Int) in
            Array(repeating: UInt8(ascii: byte.unicodeScalars.first!), count: count).withUnsafeBytes { log.write($0) }
        }
        write("a", 900)
        #expect(log.problem == nil)

        // The folder becomes a file, so the reopen after the next rotation fails (a permission
        // change would not stop a test running as root).
        try FileManager.default.moveItem(atPath: directory, toPath: parent + "/away")
        #expect(FileManager.default.createFile(atPath: directory, contents: Data()))
        write("b", 200) // 100 fill the file, the rotation cannot reopen it, 100 are lost.
        let problem = "cannot reopen \(directory)/worker.log after rotation: Not a directory"
        #expect(log.problem == problem)
        write("c", 50) // Retried, still failing: lost too.
        #expect(log.problem == problem)

        // The folder is back: the next write reopens the file, rotates it (it is full) and
        // notes what was lost before its own output.
        try FileManager.default.removeItem(atPath: directory)
        try FileManager.default.moveItem(atPath: parent + "/away", toPath: directory)
        write("d", 30)
        #expect(log.problem == nil)
        let rotated = try String(contentsOfFile: directory + "/worker.log.1", encoding: .utf8)
        #expect(rotated == String(repeating: "a", count: 900) + String(repeating: "b", count: 100))
        let current = try String(contentsOfFile: log.path, encoding: .utf8)
        #expect(current == "[multi-api-server] 150 bytes of output were lost: \(problem)\n" + String(repeating: "d", count: 30))
    }
}
