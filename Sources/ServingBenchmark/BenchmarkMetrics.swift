/// How one request of a benchmark went. Times in seconds after the request was sent.
public struct RequestOutcome: Sendable, Equatable {
    /// Why the request failed; nil when it succeeded.
    public var error: String?
    public var promptTokens: Int
    public var outputTokens: Int
    public var timeToFirstToken: Double
    public var interTokenLatencies: [Double]
    public var latency: Double

    public init(error: String? = nil, promptTokens: Int, outputTokens: Int, timeToFirstToken: Double,
                interTokenLatencies: [Double], latency: Double) {
        self.error = error
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.timeToFirstToken = timeToFirstToken
        self.interTokenLatencies = interTokenLatencies
        self.latency = latency
    }

    public static func failure(_ error: String, promptTokens: Int, latency: Double) -> RequestOutcome {
        RequestOutcome(error: error, promptTokens: promptTokens, outputTokens: 0, timeToFirstToken: 0,
                       interTokenLatencies: [], latency: latency)
    }
}

/// The figures `vllm bench serve` reports, over the successful requests: token counts and
/// throughputs over the whole run's duration, and the distributions of time to first token
/// (TTFT), time per output token after the first (TPOT, one value per request with two or
/// more output tokens: (latency − TTFT) / (tokens − 1)), inter-token latency (ITL, one value
/// per gap between streamed chunks) and end-to-end latency (E2EL). Times in seconds.
public struct BenchmarkMetrics: Sendable, Equatable {
    public var completed: Int
    public var failed: Int
    public var totalInputTokens: Int
    public var totalOutputTokens: Int
    public var duration: Double
    public var requestThroughput: Double
    public var inputThroughput: Double
    public var outputThroughput: Double
    public var totalTokenThroughput: Double
    public var timeToFirstToken: LatencySummary
    public var timePerOutputToken: LatencySummary
    public var interTokenLatency: LatencySummary
    public var endToEndLatency: LatencySummary

    public init(outcomes: [RequestOutcome], duration: Double) {
        precondition(duration > 0)
        let succeeded = outcomes.filter { $0.error == nil }
        completed = succeeded.count
        failed = outcomes.count - succeeded.count
        totalInputTokens = succeeded.reduce(0) { $0 + $1.promptTokens }
        totalOutputTokens = succeeded.reduce(0) { $0 + $1.outputTokens }
        self.duration = duration
        requestThroughput = Double(completed) / duration
        inputThroughput = Double(totalInputTokens) / duration
        outputThroughput = Double(totalOutputTokens) / duration
        totalTokenThroughput = Double(totalInputTokens + totalOutputTokens) / duration
        timeToFirstToken = LatencySummary(succeeded.map(\.timeToFirstToken))
        timePerOutputToken = LatencySummary(succeeded.filter { $0.outputTokens > 1 }.map {
            ($0.latency - $0.timeToFirstToken) / Double($0.outputTokens - 1)
        })
        interTokenLatency = LatencySummary(succeeded.flatMap(\.interTokenLatencies))
        endToEndLatency = LatencySummary(succeeded.map(\.latency))
    }
}
