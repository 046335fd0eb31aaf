import Foundation
import ServingBenchmark

/// The result of `tandem bench serve`: the run's settings, every request's outcome and the
/// metrics, printed as vLLM's table or as JSON with vLLM's key names (times in milliseconds).
struct BenchServeResult {
    var baseURL: String
    var endpoint: CompletionEndpoint
    var model: String
    var datasetName: BenchDatasetName
    var maxConcurrency: Int?
    var requestRate: Double
    var outcomes: [RequestOutcome]
    var metrics: BenchmarkMetrics

    private var latencies: [(key: String, title: String, name: String, summary: LatencySummary)] {
        [("ttft", "Time to First Token", "TTFT", metrics.timeToFirstToken),
         ("tpot", "Time per Output Token (excl. 1st token)", "TPOT", metrics.timePerOutputToken),
         ("itl", "Inter-token Latency", "ITL", metrics.interTokenLatency),
         ("e2el", "End-to-end Latency", "E2EL", metrics.endToEndLatency)]
    }

    func table() -> String {
        var lines = [centred(" Serving Benchmark Result ", "=")]
        func row(_ label: String, _ value: String) {
            lines.append(label.padding(toLength: 40, withPad: " ", startingAt: 0) + " " + value)
        }
        let m = metrics
        row("Successful requests:", "\(m.completed)")
        row("Failed requests:", "\(m.failed)")
        row("Maximum request concurrency:", maxConcurrency.map(String.init) ?? "unlimited")
        row("Request rate configured (RPS):", requestRate.isFinite ? format(requestRate) : "inf")
        row("Benchmark duration (s):", format(m.duration))
        row("Total input tokens:", "\(m.totalInputTokens)")
        row("Total generated tokens:", "\(m.totalOutputTokens)")
        row("Request throughput (req/s):", format(m.requestThroughput))
        row("Input token throughput (tok/s):", format(m.inputThroughput))
        row("Output token throughput (tok/s):", format(m.outputThroughput))
        row("Total token throughput (tok/s):", format(m.totalTokenThroughput))
        for latency in latencies {
            lines.append(centred(latency.title, "-"))
            let s = latency.summary
            row("Mean \(latency.name) (ms):", format(s.mean * 1000))
            row("Median \(latency.name) (ms):", format(s.median * 1000))
            row("P90 \(latency.name) (ms):", format(s.p90 * 1000))
            row("P99 \(latency.name) (ms):", format(s.p99 * 1000))
        }
        lines.append(String(repeating: "=", count: 50))
        let errors = outcomes.compactMap(\.error)
        for error in errors.prefix(5) { lines.append("error: \(error)") }
        if errors.count > 5 { lines.append("(\(errors.count - 5) more errors)") }
        return lines.joined(separator: "\n") + "\n"
    }

    func jsonData(pretty: Bool) throws -> Data {
        let m = metrics
        var object: [String: Any] = [
            "date": ISO8601DateFormatter().string(from: Date()),
            "backend": "openai", "base_url": baseURL, "endpoint": endpoint.path, "model_id": model,
            "dataset_name": datasetName.rawValue, "num_prompts": outcomes.count,
            "max_concurrency": maxConcurrency.map { $0 as Any } ?? NSNull(),
            "request_rate": requestRate.isFinite ? requestRate as Any : "inf",
            "completed": m.completed, "failed": m.failed,
            "total_input_tokens": m.totalInputTokens, "total_output_tokens": m.totalOutputTokens,
            "duration": m.duration, "request_throughput": m.requestThroughput,
            "input_throughput": m.inputThroughput, "output_throughput": m.outputThroughput,
            "total_token_throughput": m.totalTokenThroughput,
            "input_lens": outcomes.map(\.promptTokens), "output_lens": outcomes.map(\.outputTokens),
            "ttfts": outcomes.map(\.timeToFirstToken), "errors": outcomes.map { $0.error ?? "" },
        ]
        for latency in latencies {
            let s = latency.summary
            object["mean_\(latency.key)_ms"] = s.mean * 1000
            object["median_\(latency.key)_ms"] = s.median * 1000
            object["p90_\(latency.key)_ms"] = s.p90 * 1000
            object["p99_\(latency.key)_ms"] = s.p99 * 1000
            object["std_\(latency.key)_ms"] = s.standardDeviation * 1000
        }
        return try JSONSerialization.data(withJSONObject: object, options: pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys])
    }

    private func format(_ value: Double) -> String { String(format: "%.2f", value) }

    private func centred(_ title: String, _ fill: Character) -> String {
        let side = max(0, 50 - title.count)
        return String(repeating: fill, count: side / 2) + title + String(repeating: fill, count: side - side / 2)
    }
}
