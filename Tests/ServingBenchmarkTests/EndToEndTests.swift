import ModelStore
import Foundation
import Testing
import TestSupport
import Tokenization
import ServingBenchmark

/// `tandem`, built next to the tests.
var tandemExecutable: String { get throws { try BuiltProducts.path("tandem") } }

extension APIServerProcess {
    /// Polls until `GET /v1/models` answers (or the server exits, or the deadline passes).
    func waitUntilServing(tokenizer: Tokenizer, deadline: Duration = .seconds(180)) async throws {
        let client = OpenAIStreamingClient(baseURL: baseURL, maxConnections: 1, requestTimeout: 10, tokenizer: tokenizer)
        // waitUntil asks once more after the deadline: on a busy machine this task may not run
        // again until after it, although the server has long been serving.
        let serving = await TestSupport.waitUntil(deadline: .now + deadline, poll: .milliseconds(200)) {
            guard self.process.isRunning else { return true }
            return (try? await client.firstModel()) != nil
        } && process.isRunning
        try await client.shutdown()
        guard process.isRunning else { throw StreamError("the server exited (\(process.terminationStatus)):\n\(log)") }
        guard serving else { throw StreamError("the server did not answer GET /v1/models within \(deadline):\n\(log)") }
    }
}

/// Runs `tandem bench serve` with `arguments` and returns its `--json` result.
func benchServe(_ arguments: [String]) throws -> [String: Any] {
    let result = try runProcess(try tandemExecutable, ["bench", "serve", "--json"] + arguments)
    guard result.status == 0 else {
        throw StreamError("tandem bench serve exited \(result.status):\n\(result.stderr)\n\(result.stdout)")
    }
    guard let object = try JSONSerialization.jsonObject(with: result.stdoutData) as? [String: Any] else {
        throw StreamError("tandem bench serve printed no JSON object:\n\(result.stdout)")
    }
    return object
}

/// Drives a real server with `tandem bench serve` and checks what the benchmark reports:
/// every request succeeds, the output token counts are exactly the ones asked for
/// (`--ignore-eos`), the prompt lengths are those of the random dataset (plus a BOS the
/// server may add), the latency statistics are ordered, and `--save-result` holds the same.
func checkBenchmark(against server: APIServerProcess) async throws {
    try await server.waitUntilServing(tokenizer: try defaultTokenizer.get())
    let saved = FileManager.default.temporaryDirectory.appendingPathComponent("bench-serve-\(UUID().uuidString).json").path
    defer { try? FileManager.default.removeItem(atPath: saved) }
    let result = try benchServe([
        "--base-url", server.baseURL, "--num-prompts", "12", "--max-concurrency", "4",
        "--random-input-len", "48", "--random-output-len", "16", "--ignore-eos", "--save-result", saved,
    ])
    #expect(result["completed"] as? Int == 12, "\(result["errors"] ?? "")")
    #expect(result["failed"] as? Int == 0)
    #expect(result["total_output_tokens"] as? Int == 12 * 16)
    #expect((result["output_lens"] as? [Int]) == Array(repeating: 16, count: 12))
    #expect((result["input_lens"] as? [Int])?.allSatisfy { (48...49).contains($0) } == true, "\(result["input_lens"] ?? "")")
    for metric in ["ttft", "tpot", "itl", "e2el"] {
        let median = result["median_\(metric)_ms"] as? Double ?? -1
        let p99 = result["p99_\(metric)_ms"] as? Double ?? -1
        #expect(median > 0 && p99 >= median, "\(metric): median \(median), p99 \(p99)")
    }
    #expect((result["output_throughput"] as? Double ?? 0) > 0)
    let file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: saved))) as? [String: Any]
    #expect(file?["total_output_tokens"] as? Int == 12 * 16)
    #expect(Set(file?.keys.map { $0 } ?? []) == Set(result.keys))

    // Chat endpoint, Poisson arrivals, the server's own stopping.
    let chat = try benchServe([
        "--base-url", server.baseURL, "--endpoint", "chat", "--num-prompts", "6", "--request-rate", "20",
        "--random-input-len", "24", "--random-output-len", "8", "--seed", "3",
    ])
    #expect(chat["completed"] as? Int == 6, "\(chat["errors"] ?? "")")
    #expect((chat["output_lens"] as? [Int])?.allSatisfy { (1...8).contains($0) } == true)
}

@Suite(.serialized) struct EndToEndTests {
    /// A real api-server on the default model.
    @Test func benchmarksTandemsApiServer() async throws {
        let server = try APIServerProcess(waitUntilHealthy: false)
        try await checkBenchmark(against: server)
    }

    /// Locally, not in CI: `TANDEM_LLAMA_SERVER=/path/to/llama-server` runs the same checks
    /// against llama.cpp's server (scripts/bench-serve.sh builds one).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TANDEM_LLAMA_SERVER"] != nil))
    func benchmarksLlamaServer() async throws {
        let llamaServer = ProcessInfo.processInfo.environment["TANDEM_LLAMA_SERVER"]!
        let port = try freeLoopbackPort()
        let server = try APIServerProcess(executable: llamaServer, arguments: [
            "-m", DefaultModel.path(), "--host", "127.0.0.1", "--port", "\(port)", "--threads", "2", "--parallel", "4", "-c", "4096",
        ], port: port)
        try await checkBenchmark(against: server)
    }

    @Test func aServerThatIsNotThereIsAClearError() throws {
        let port = try freeLoopbackPort()
        let result = try runProcess(try tandemExecutable, ["bench", "serve", "--base-url", "http://127.0.0.1:\(port)",
                                                        "--model", "m", "--num-prompts", "1", "--random-input-len", "4"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("the first test request to http://127.0.0.1:\(port) failed: "), "\(result.stderr)")
    }

    @Test(arguments: [
        (["--random-range-ratio", "1"], "--random-range-ratio must be at least 0 and below 1"),
        (["--random-input-len", "64,0"], "--random-input-len must be at least 1"),
        (["--random-input-len", "64,"], "The value '64,' is invalid for '--random-input-len <tokens>'"),
        (["--dataset-name", "sharegpt"], "--dataset-name sharegpt needs --dataset-path"),
        (["--request-rate", "0"], "--request-rate must be above 0 (or inf)"),
        (["--max-concurrency", "0"], "--max-concurrency must be at least 1"),
        (["--base-url", "localhost:8000"], "--base-url must be an http:// or https:// URL, not localhost:8000"),
        (["--endpoint", "embeddings"], "--endpoint"),
    ])
    func badFlagsAreRefused(arguments: [String], message: String) throws {
        let result = try runProcess(try tandemExecutable, ["bench", "serve"] + arguments)
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }
}
