import Engine
import Prometheus
import Synchronization

/// api-server's Prometheus metrics, named after vLLM's (`vllm:` becomes `tandem:`). Gauges and
/// engine counters are read from the engine at each scrape; latency histograms are recorded
/// by the API layer as requests finish.
public final class ServingMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let running: Gauge
    private let waiting: Gauge
    private let kvUsage: Gauge
    private let kvBlocksUsed: Gauge
    private let kvBlocksFree: Gauge
    private let promptTokens: Counter
    private let generationTokens: Counter
    private let preemptions: Counter
    private let prefixCacheQueries: Counter
    private let prefixCacheHits: Counter
    private let finishedRequests: Counter
    private let abortedRequests: Counter
    private let timeToFirstToken: ValueHistogram
    private let timePerOutputToken: ValueHistogram
    private let endToEnd: ValueHistogram
    private let queueTime: ValueHistogram
    /// The engine counters already added to the Prometheus counters (those only go up by deltas).
    private let reported = Mutex(EngineCounters())

    public init(modelName: String) {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        let labels = [("model_name", modelName)]
        // vLLM's names with `tandem:` for `vllm:` (a colon: not expressible as a namespace).
        func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: "tandem:\(name)", unitName: "", helpText: help)
        }
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: descriptor(name, help), labels: labels)
        }
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: descriptor(name, help), labels: labels)
        }
        func histogram(_ name: String, _ buckets: [Double], _ help: String) -> ValueHistogram {
            registry.makeValueHistogram(descriptor: descriptor(name, help), labels: labels, buckets: buckets)
        }
        running = gauge("num_requests_running", "Requests in the running batch")
        waiting = gauge("num_requests_waiting", "Requests waiting to be scheduled")
        kvUsage = gauge("kv_cache_usage_perc", "Fraction of KV cache blocks in use (1 = all)")
        kvBlocksUsed = gauge("kv_cache_blocks_used", "KV cache blocks held by requests")
        kvBlocksFree = gauge("kv_cache_blocks_free", "KV cache blocks free (including evictable cached blocks)")
        promptTokens = counter("prompt_tokens_total", "Prompt tokens processed")
        generationTokens = counter("generation_tokens_total", "Tokens generated")
        preemptions = counter("num_preemptions_total", "Times a running request was preempted to free KV blocks")
        prefixCacheQueries = counter("prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache")
        prefixCacheHits = counter("prefix_cache_hits_total", "Prompt tokens found in the prefix cache")
        finishedRequests = counter("request_success_total", "Requests that finished (stop or length)")
        abortedRequests = counter("request_aborted_total", "Requests aborted (client gone, stop string, drain)")
        let latency: [Double] = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80]
        timeToFirstToken = histogram("time_to_first_token_seconds", latency, "Seconds from request arrival to its first token")
        timePerOutputToken = histogram("time_per_output_token_seconds", latency, "Mean seconds between output tokens of a request")
        endToEnd = histogram("e2e_request_latency_seconds", latency, "Seconds from request arrival to its last token")
        queueTime = histogram("request_queue_time_seconds", latency, "Seconds a request waited before it was first scheduled")
    }

    /// One finished generation (one choice): its latencies.
    func recordRequest(timeToFirstToken ttft: Double?, endToEnd e2e: Double, outputTokens: Int, queueSeconds: Double) {
        if let ttft {
            timeToFirstToken.record(ttft)
            if outputTokens > 1 { timePerOutputToken.record((e2e - ttft) / Double(outputTokens - 1)) }
        }
        endToEnd.record(e2e)
        queueTime.record(queueSeconds)
    }

    /// The Prometheus text, with the engine's current load and counters.
    public func text(load: EngineLoad?, counters: EngineCounters?) -> String {
        if let load {
            running.set(to: Double(load.runningRequests))
            waiting.set(to: Double(load.waitingRequests))
            kvBlocksUsed.set(to: Double(load.kvBlocksUsed))
            kvBlocksFree.set(to: Double(load.kvBlocksFree))
            kvUsage.set(to: load.kvBlocksTotal > 0 ? Double(load.kvBlocksUsed) / Double(load.kvBlocksTotal) : 0)
        }
        if let counters {
            let last = reported.withLock { reported in
                let last = reported
                reported = counters
                return last
            }
            func add(_ counter: Counter, _ keyPath: KeyPath<EngineCounters, Int> & Sendable) {
                let delta = counters[keyPath: keyPath] - last[keyPath: keyPath]
                if delta > 0 { counter.increment(by: Int64(delta)) }
            }
            add(promptTokens, \.promptTokens)
            add(generationTokens, \.generationTokens)
            add(preemptions, \.preemptions)
            add(prefixCacheQueries, \.prefixCacheQueries)
            add(prefixCacheHits, \.prefixCacheHits)
            add(finishedRequests, \.finishedRequests)
            add(abortedRequests, \.abortedRequests)
        }
        return registry.emitToString()
    }
}
