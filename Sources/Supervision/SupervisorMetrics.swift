import Prometheus

/// The supervisor's Prometheus metrics, served on the control port's `/metrics`.
struct SupervisorMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let up: [Gauge]
    private let restarts: [Counter]
    private let ranksUp: Gauge
    private let probeLatency: DurationHistogram

    /// One series per rank, labelled with its rank id; the other methods take a rank's index
    /// into `rankIDs`.
    init(rankIDs: [Int]) {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        let upName = MetricNameDescriptor(namespace: "tandem", metricName: "rank_up", unitName: "",
                                          helpText: "1 when the rank passes its health checks, else 0")
        let restartName = MetricNameDescriptor(namespace: "tandem", metricName: "rank_restarts", unitName: "total",
                                               helpText: "Restarts of the rank since the supervisor started")
        up = rankIDs.map { registry.makeGauge(descriptor: upName, labels: [("rank", "\($0)")]) }
        restarts = rankIDs.map { registry.makeCounter(descriptor: restartName, labels: [("rank", "\($0)")]) }
        ranksUp = registry.makeGauge(descriptor: MetricNameDescriptor(
            namespace: "tandem", metricName: "ranks_up", unitName: "", helpText: "Ranks passing their health checks"))
        probeLatency = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(namespace: "tandem", metricName: "health_check_duration", unitName: "seconds",
                                             helpText: "Latency of GET /health probes to ranks"),
            buckets: [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                      .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                      .seconds(2.5), .seconds(5)])
    }

    func setUp(_ upByIndex: [Bool]) {
        for (index, isUp) in upByIndex.enumerated() where index < up.count {
            up[index].set(to: isUp ? 1.0 : 0.0)
        }
        ranksUp.set(to: Double(upByIndex.filter { $0 }.count))
    }

    func countRestart(index: Int) { restarts[index].increment() }
    func recordProbe(_ latency: Duration) { probeLatency.record(latency) }
    func text() -> String { registry.emitToString() }
}
