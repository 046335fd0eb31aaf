import Foundation
import Testing
import TestSupport

/// Other routers in front of Tandem workers, and Tandem's router under the official OpenAI
/// client (Python/router_openai_check.py: every answer equals the worker's own).
@Suite(.serialized) struct InteropTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Python/router_openai_check.py").path

    static func check(router port: Int, worker: APIServerProcess) throws -> ProcessOutput {
        try runProcess("/usr/bin/env", ["python3", script, "http://127.0.0.1:\(port)/v1", "http://127.0.0.1:\(worker.port)/v1", "smollm2"])
    }

    @Test func vllmRouterServesTheOpenAIClientFromTwoTandemWorkers() throws {
        let a = try APIServerProcess(["--threads", "1", "--served-model-name", "smollm2"])
        let b = try APIServerProcess(["--threads", "1", "--served-model-name", "smollm2"])
        defer { a.stop(); b.stop() }
        let ports = try freeLoopbackPorts(2)
        let port = ports[0]
        let logPath = NSTemporaryDirectory() + "vllm-router-\(UUID().uuidString).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // Its Prometheus exporter has a fixed default port: another one is given, free.
        process.arguments = ["vllm-router", "--host", "127.0.0.1", "--port", String(port), "--policy", "round_robin",
                             "--prometheus-host", "127.0.0.1", "--prometheus-port", String(ports[1]),
                             "--worker-urls", "http://127.0.0.1:\(a.port)", "http://127.0.0.1:\(b.port)"]
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        let routerLog = { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        let up = waitUntil { !process.isRunning || httpGet(port: port, path: "/v1/models", timeout: .seconds(2))?.status == 200 }
        try #require(up && process.isRunning, "vllm-router did not start (installed by scripts/install-deps.sh):\n\(routerLog())")

        let result = try Self.check(router: port, worker: a)
        #expect(result.status == 0, "router_openai_check.py through vllm-router:\n\(result.stdout)\n\(result.stderr)\n\(routerLog())")
        #expect(result.stdout.contains("all checks passed"))
        #expect(try a.metric("tandem:request_success_total") > 6 && (try b.metric("tandem:request_success_total")) > 0)
        try a.waitUntilIdle()
        try b.waitUntilIdle()
    }

    @Test func tandemsRouterServesTheOpenAIClient() throws {
        let a = try APIServerProcess(["--threads", "1", "--served-model-name", "smollm2"])
        defer { a.stop() }
        let router = try RouterProcess(["--worker-urls", "http://127.0.0.1:\(a.port)"])
        defer { router.stop() }
        try router.waitForHealthyWorkers(1)
        let result = try Self.check(router: router.port, worker: a)
        #expect(result.status == 0, "router_openai_check.py through router:\n\(result.stdout)\n\(result.stderr)\n\(router.log)")
        #expect(result.stdout.contains("all checks passed"))
        try a.waitUntilIdle()
    }
}
