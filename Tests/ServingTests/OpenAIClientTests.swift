import Foundation
import Testing
import TestSupport

/// The official OpenAI Python client (PyPI `openai`, installed by scripts/install-deps.sh)
/// against a real api-server: completions, chat, streaming, logprobs, echo, stop, n, errors.
@Suite struct OpenAIClientTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Python/openai_client_check.py").path

    @Test func theOfficialClientWorksAgainstAPIServer() throws {
        let server = try APIServerProcess(["--served-model-name", "smollm2"])
        defer { server.stop() }
        let result = try runProcess("/usr/bin/env", ["python3", Self.script, "http://127.0.0.1:\(server.port)/v1", "smollm2"])
        #expect(result.status == 0, "openai_client_check.py failed:\n\(result.stdout)\n\(result.stderr)\nserver log:\n\(server.log)")
        #expect(result.stdout.contains("all checks passed"))
        try server.waitUntilIdle()
    }
}
