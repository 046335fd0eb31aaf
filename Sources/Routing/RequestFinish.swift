import Synchronization

/// Ends one client request exactly once, however it ends (answered, streamed to the end, failed,
/// client gone): gives its admission slot back and records it in the metrics.
final class RequestFinish: Sendable {
    private let done = Atomic<Bool>(false)
    private let firstToken = Mutex<Duration?>(nil)
    let admission: AdmissionQueue
    let metrics: RouterMetrics
    let route: String
    let start: ContinuousClock.Instant

    init(admission: AdmissionQueue, metrics: RouterMetrics, route: String, start: ContinuousClock.Instant) {
        self.admission = admission
        self.metrics = metrics
        self.route = route
        self.start = start
    }

    func markFirstToken() {
        let now = ContinuousClock.now
        firstToken.withLock { if $0 == nil { $0 = now - start } }
    }

    func finish(status: Int) {
        guard !done.exchange(true, ordering: .acquiringAndReleasing) else { return }
        admission.release()
        metrics.recordRequest(route: route, status: status, duration: .now - start, firstToken: firstToken.withLock { $0 })
    }
}
