import ArgumentParser
import Engine
import Foundation
import GGUF
import ServingBenchmark
import Tokenization

extension CompletionEndpoint: ExpressibleByArgument {}

/// `--random-input-len`: one prompt length, or several separated by commas.
struct PromptLengths: ExpressibleByArgument, Equatable {
    var lengths: [Int]

    init(_ lengths: [Int]) { self.lengths = lengths }

    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
        let lengths = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !lengths.isEmpty, lengths.count == parts.count else { return nil }
        self.lengths = lengths
    }

    var defaultValueDescription: String { lengths.map(String.init).joined(separator: ",") }
}

enum BenchDatasetName: String, ExpressibleByArgument, CaseIterable {
    case random, sharegpt
}

/// `tandem bench serve`: load test of a running OpenAI-compatible server, modelled on
/// `vllm bench serve`.
struct BenchServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Measure a running OpenAI-compatible server with streamed requests (like vllm bench serve).")

    @Option(help: ArgumentHelp("Server address.", valueName: "url"))
    var baseURL = "http://127.0.0.1:8000"

    @Option(help: "API to call: completions (/v1/completions) or chat (/v1/chat/completions).")
    var endpoint = CompletionEndpoint.completions

    @Option(help: ArgumentHelp("Model name to send. Default: the first one GET /v1/models lists.", valueName: "name"))
    var model: String?

    @Option(help: ArgumentHelp("Bearer token sent in the Authorization header.", valueName: "key"))
    var apiKey: String?

    @Option(help: "Where prompts come from: random (random tokens of given lengths) or sharegpt (--dataset-path).")
    var datasetName = BenchDatasetName.random

    @Option(help: ArgumentHelp("ShareGPT-style JSON file (with --dataset-name sharegpt).", valueName: "file"))
    var datasetPath: String?

    @Option(help: "Number of requests to send.")
    var numPrompts = 100

    @Option(help: ArgumentHelp(
        "Prompt length in tokens of the random dataset; several, comma separated (64,2048), split the prompts evenly between them in a shuffled order.",
        valueName: "tokens"))
    var randomInputLen = PromptLengths([1024])

    @Option(help: "Output tokens per request of the random dataset.")
    var randomOutputLen = 128

    @Option(help: "Random lengths are drawn uniformly from len × (1 ± ratio); 0 makes every request the same.")
    var randomRangeRatio = 0.0

    @Option(help: "Output tokens per ShareGPT request instead of the reference reply's length.")
    var sharegptOutputLen: Int?

    @Option(help: "Most requests in flight at once. Default: no limit.")
    var maxConcurrency: Int?

    @Option(help: "Requests per second, sent as a Poisson process; inf sends them all at once.")
    var requestRate = Double.infinity

    @Flag(help: "Ask the server to ignore end-of-sequence tokens, so every request generates its full output length.")
    var ignoreEos = false

    @Option(help: "Seed of the random prompts, the ShareGPT sample and the arrival times.")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp(
        "GGUF file whose tokenizer makes and counts the prompts. Default: the default model.", valueName: "path"))
    var tokenizerModel: String?

    @Option(help: "Seconds a single request may take before it counts as failed.")
    var requestTimeout = 600.0

    @Option(help: ArgumentHelp("Also write the result as JSON to this file.", valueName: "file"))
    var saveResult: String?

    @Flag(help: "Print the result as one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard numPrompts >= 1 else { throw ValidationError("--num-prompts must be at least 1") }
        guard randomInputLen.lengths.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--random-input-len must be at least 1") }
        guard randomOutputLen >= 1 else { throw ValidationError("--random-output-len must be at least 1") }
        guard (0..<1).contains(randomRangeRatio) else {
            throw ValidationError("--random-range-ratio must be at least 0 and below 1")
        }
        if let sharegptOutputLen, sharegptOutputLen < 1 { throw ValidationError("--sharegpt-output-len must be at least 1") }
        if let maxConcurrency, maxConcurrency < 1 { throw ValidationError("--max-concurrency must be at least 1") }
        guard requestRate > 0 else { throw ValidationError("--request-rate must be above 0 (or inf)") }
        guard requestTimeout > 0 else { throw ValidationError("--request-timeout must be above 0") }
        switch datasetName {
        case .sharegpt where datasetPath == nil: throw ValidationError("--dataset-name sharegpt needs --dataset-path")
        case .random where datasetPath != nil: throw ValidationError("--dataset-path needs --dataset-name sharegpt")
        default: break
        }
        guard let url = URL(string: baseURL), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ValidationError("--base-url must be an http:// or https:// URL, not \(baseURL)")
        }
    }

    func run() async throws {
        let tokenizerPath = try tokenizerModel ?? fetchDefaultModel()
        guard FileManager.default.fileExists(atPath: tokenizerPath) else {
            throw ToolboxError("tokenizer model file not found: \(tokenizerPath)")
        }
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: tokenizerPath))
        let prompts: [BenchmarkPrompt]
        switch datasetName {
        case .random:
            prompts = try RandomDataset.make(count: numPrompts, inputLengths: randomInputLen.lengths, outputLength: randomOutputLen,
                                             rangeRatio: randomRangeRatio, tokenizer: tokenizer, seed: seed)
        case .sharegpt:
            prompts = try ShareGPTDataset.load(path: datasetPath!, count: numPrompts, outputLength: sharegptOutputLen,
                                               tokenizer: tokenizer, seed: seed)
        }

        let client = OpenAIStreamingClient(baseURL: baseURL, apiKey: apiKey,
                                           maxConnections: maxConcurrency ?? numPrompts,
                                           requestTimeout: requestTimeout, tokenizer: tokenizer)
        do {
            let result = try await measure(client: client, prompts: prompts)
            try await client.shutdown()
            try report(result)
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func measure(client: OpenAIStreamingClient, prompts: [BenchmarkPrompt]) async throws -> BenchServeResult {
        let modelName: String
        if let model { modelName = model } else { modelName = try await client.firstModel() }
        // A first request, not counted, checks that the server answers at all (as vLLM does).
        let probe = await client.send(prompts[0], endpoint: endpoint, model: modelName, ignoreEOS: ignoreEos)
        if let error = probe.error { throw ToolboxError("the first test request to \(baseURL) failed: \(error)") }

        var bar = ProgressBar(total: prompts.count)
        let (outcomes, duration) = await runServingBenchmark(
            client: client, prompts: prompts, endpoint: endpoint, model: modelName, ignoreEOS: ignoreEos,
            maxConcurrency: maxConcurrency, requestRate: requestRate, seed: seed) { bar.update(finished: $0) }
        bar.finish()
        return BenchServeResult(baseURL: baseURL, endpoint: endpoint, model: modelName, datasetName: datasetName,
                                maxConcurrency: maxConcurrency, requestRate: requestRate, outcomes: outcomes,
                                metrics: BenchmarkMetrics(outcomes: outcomes, duration: duration))
    }

    private func report(_ result: BenchServeResult) throws {
        if let saveResult {
            do {
                try result.jsonData(pretty: true).write(to: URL(fileURLWithPath: saveResult))
            } catch {
                throw ToolboxError("cannot write --save-result \(saveResult): \(error.localizedDescription)")
            }
        }
        if json {
            print(String(decoding: try result.jsonData(pretty: false), as: UTF8.self))
        } else {
            print(result.table(), terminator: "")
        }
        if result.metrics.completed == 0 { throw ExitCode.failure }
    }
}
