import Foundation
import Testing
import TestSupport

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

@Suite struct APIServerManPageTests {
    @Test func everyFlagInTheHelpIsInTheManPage() throws {
        let result = try runProcess(try APIServerProcess.binary, ["--help"])
        #expect(result.status == 0)
        let flags = Set(result.stdout.matches(of: /--[a-z][a-z-]*[a-z]/).map { String($0.output) })
        #expect(flags.count >= 26)
        #expect(flags.contains("--engine-worker-queue-port") && flags.contains("--no-enable-prefix-caching")
            && flags.contains("--cpu-kernels"))
        let manPage = try String(contentsOfFile: packageRoot + "/Man/api-server.1", encoding: .utf8)
            .replacingOccurrences(of: "\\-", with: "-")
        for flag in flags.sorted() {
            #expect(manPage.contains(flag), "\(flag) is in --help but not in Man/api-server.1")
        }
    }
}
