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
