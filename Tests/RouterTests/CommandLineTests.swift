import Foundation
import Testing
import TestSupport

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The router's flags: every one documented in Man/router.1, bad ones refused with exit 78.
@Suite struct CommandLineTests {
    @Test func everyFlagInTheHelpIsInTheManPage() throws {
        let result = try runProcess(try RouterProcess.binary, ["--help"])
        #expect(result.status == 0)
        let flags = Set(result.stdout.matches(of: /--[a-z][a-z-]*[a-z]/).map { String($0.output) })
        #expect(flags.count >= 35)
        #expect(flags.contains("--splitwise") && flags.contains("--prefill-routing-policy") && flags.contains("--register-token"))
        let manPage = try String(contentsOfFile: packageRoot + "/Man/router.1", encoding: .utf8)
            .replacingOccurrences(of: "\\-", with: "-")
        for flag in flags.sorted() {
            #expect(manPage.contains(flag), "\(flag) is in --help but not in Man/router.1")
        }
    }

    @Test func configurationErrorsExit78WithTheExactMessage() throws {
        let cluster = NSTemporaryDirectory() + "cluster-\(UUID().uuidString).json"
        try Data(#"{"prefill": [{"host": "127.0.0.1"}]}"#.utf8).write(to: URL(fileURLWithPath: cluster))
        defer { try? FileManager.default.removeItem(atPath: cluster) }
        let cases: [([String], String)] = [
            (["--prefill", "http://127.0.0.1:9"], "router: Error: --prefill and --decode need --splitwise"),
            (["--decode-policy", "bucket"], "router: Error: bucket routes prefill instances by prompt length: use it with --prefill-policy"),
            (["--policy", "fastest"], "router: Error: The value 'fastest' is invalid for '--policy <policy>'. Please provide one of the following:"),
            (["--worker-urls", "127.0.0.1:9"], "router: Error: '127.0.0.1:9' is not a worker URL such as http://127.0.0.1:8000"),
            (["--splitwise", "--cluster-config", cluster], "router: Error: --cluster-config \(cluster): prefill[0]: missing key 'port'"),
            (["--cluster-config", "/nonexistent.json"], "router: Error: --cluster-config /nonexistent.json: cannot read the file"),
            (["--prefill-policy", "random", "--prefill-routing-policy", "BLB"], "router: Error: give --prefill-policy or --prefill-routing-policy, not both"),
            (["--health-failure-threshold", "0"], "router: Error: --health-failure-threshold and --health-success-threshold must be at least 1"),
            (["--scheduler-expire-period", "5"], "router: Error: --scheduler-expire-period must be longer than --scheduler-sync-period"),
        ]
        for (arguments, message) in cases {
            let result = try runProcess(try RouterProcess.binary, arguments)
            #expect(result.status == 78, "\(arguments)")
            #expect(result.stderr.components(separatedBy: "\n").first == message, "\(arguments): \(result.stderr)")
        }
    }
}
