import Prometheus
import Synchronization

/// The router's Prometheus metrics (`GET /metrics`). Per-worker series are refreshed from the
/// table at each scrape and dropped when a worker leaves it.
public final class RouterMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60),
    ]
    private let retries: Counter
    private let pdTransferBytes: Counter
    private let pdTransferSeconds: DurationHistogram
    private let queueWaiting: Gauge
    private let running: Gauge
    /// Only with `--scheduler-name splitwise`.
    private let schedulerRedisUp: Gauge?
    private let workerSeries = Mutex<[String: [Gauge]]>([:])
    /// Per route and status: made once, then only counted (the registry's lookup builds names).
    private let requestSeries = Mutex<[String: (count: Counter, duration: DurationHistogram, firstToken: DurationHistogram)]>([:])

    public init(scheduler: Bool = false) {
        schedulerRedisUp = scheduler
            ? registry.makeGauge(descriptor: Self.name("scheduler_redis_up", "", "1 when the splitwise scheduler's Redis answered the last cluster read"))
            : nil
        retries = registry.makeCounter(descriptor: Self.name("retries", "total", "Requests sent again to another worker"))
        pdTransferBytes = registry.makeCounter(descriptor: Self.name("pd_transfer_bytes", "total",
                                                                     "KV bytes prefill instances pushed to decode instances"))
        pdTransferSeconds = registry.makeDurationHistogram(
            descriptor: Self.name("pd_transfer_duration", "seconds", "KV transfer time of PD requests, as the prefill instance reports it"),
            buckets: latencyBuckets)
        queueWaiting = registry.makeGauge(descriptor: Self.name("queue_waiting", "", "Requests waiting for a slot under --max-concurrent-requests"))
        running = registry.makeGauge(descriptor: Self.name("requests_running", "", "Requests the router is relaying now"))
    }

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "tandem", subsystem: "router", metricName: metric, unitName: unit, helpText: help)
    }

    /// One finished client request: `route` (completions, chat_completions, models), its HTTP
    /// status, its duration and, for streams, the time to its first token.
    public func recordRequest(route: String, status: Int, duration: Duration, firstToken: Duration?) {
        let key = "\(route) \(status)"
        let series = requestSeries.withLock { series in
            if let known = series[key] { return known }
            let made = (
                count: registry.makeCounter(descriptor: Self.name("requests", "total", "Client requests by route and HTTP status"),
                                            labels: [("route", route), ("status", String(status))]),
                duration: registry.makeDurationHistogram(
                    descriptor: Self.name("request_duration", "seconds", "Client request latency through the router"),
                    labels: [("route", route)], buckets: latencyBuckets),
                firstToken: registry.makeDurationHistogram(
                    descriptor: Self.name("time_to_first_token", "seconds", "Time to the first streamed token through the router"),
                    labels: [("route", route)], buckets: latencyBuckets))
            series[key] = made
            return made
        }
        series.count.increment()
        series.duration.record(duration)
        if let firstToken { series.firstToken.record(firstToken) }
    }

    /// A failure: `kind` is upstream, no_worker, queue_full, queue_timeout, timeout, bad_request.
    public func recordError(_ kind: String) {
        registry.makeCounter(descriptor: Self.name("errors", "total", "Failures by kind"), labels: [("kind", kind)]).increment()
    }

    public func setSchedulerRedisUp(_ up: Bool) { schedulerRedisUp?.set(to: up ? 1 : 0) }

    public func recordRetry() { retries.increment() }

    public func recordTransfer(bytes: Int, seconds: Double) {
        pdTransferBytes.increment(by: Int64(max(0, bytes)))
        pdTransferSeconds.record(.milliseconds(Int64(seconds * 1000)))
    }

    /// The metrics text, after refreshing the per-worker series and the queue gauges.
    public func text(workers: [WorkerStatus], queue: AdmissionQueue) -> String {
        queueWaiting.set(to: Double(queue.waiting))
        running.set(to: Double(queue.running))
        workerSeries.withLock { series in
            var seen: Set<String> = []
            for worker in workers {
                seen.insert(worker.url)
                let labels = [("worker", worker.url), ("role", worker.role.rawValue)]
                let gauges = [
                    registry.makeGauge(descriptor: Self.name("worker_healthy", "", "1 when the worker passes its health checks"), labels: labels),
                    registry.makeGauge(descriptor: Self.name("worker_in_flight", "", "Requests the router has in flight on the worker"), labels: labels),
                    registry.makeGauge(descriptor: Self.name("worker_circuit_breaker_state", "", "0 closed, 1 open, 2 half-open"), labels: labels),
                    registry.makeGauge(descriptor: Self.name("worker_running_requests", "", "Running requests in the worker's last /load"), labels: labels),
                    registry.makeGauge(descriptor: Self.name("worker_waiting_requests", "", "Waiting requests in the worker's last /load"), labels: labels),
                    registry.makeGauge(descriptor: Self.name("worker_kv_blocks_free", "", "Free KV blocks in the worker's last /load"), labels: labels),
                ]
                gauges[0].set(to: worker.healthy ? 1 : 0)
                gauges[1].set(to: Double(worker.inFlight))
                gauges[2].set(to: (CircuitBreaker.State(rawValue: worker.circuitBreaker) ?? .closed).gaugeValue)
                gauges[3].set(to: Double(worker.load?.runningRequests ?? 0))
                gauges[4].set(to: Double(worker.load?.waitingRequests ?? 0))
                gauges[5].set(to: Double(worker.load?.kvBlocksFree ?? 0))
                series[worker.url] = gauges
            }
            for (url, gauges) in series where !seen.contains(url) {
                gauges.forEach { registry.unregisterGauge($0) }
                series[url] = nil
            }
        }
        return registry.emitToString()
    }
}
