import Foundation
import Testing
import TestSupport

/// `--prefill-batching-policy` and `--prefill-batching-max-wait`: bad values are configuration
/// errors (exit 78) with a message naming the flag.
@Suite struct PrefillBatchingFlagTests {
    /// The error line (a usage line and a pointer to --help follow it).
    func firstLine(_ text: String) -> String { String(text.prefix { $0 != "\n" }) }

    @Test func anUnknownPolicyIsRefused() throws {
        let result = try runProcess(try APIServerProcess.binary, ["--prefill-batching-policy", "sjf"])
        #expect(result.status == 78)
        #expect(firstLine(result.stderr) == "api-server: Error: The value 'sjf' is invalid for '--prefill-batching-policy <policy>'. Please provide one of 'fcfs' and 'gtsf'.")
    }

    @Test func aNegativeMaxWaitIsRefused() throws {
        for value in ["-1", "nan"] {
            let result = try runProcess(try APIServerProcess.binary, ["--prefill-batching-max-wait=\(value)"])
            #expect(result.status == 78)
            #expect(firstLine(result.stderr) == "api-server: Error: --prefill-batching-max-wait must be 0 or more seconds (at most 1e9)", "\(value)")
        }
    }
}
