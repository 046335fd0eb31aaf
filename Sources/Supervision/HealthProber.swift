import CCurl
import Dispatch

/// The outcome of one `GET /health`.
struct ProbeResult: Sendable {
    /// The probed rank's index into the supervisor's array of ranks.
    var index: Int
    var healthy: Bool
    var latency: Duration
    /// "HTTP 503", "Timeout was reached", "Couldn't connect to server", … (empty when healthy).
    var problem: String
}

/// Probes ranks' `GET http://<host>:<api port>/health` with libcurl's multi interface:
/// one round probes every target in parallel, each bounded by the timeout. Rounds run on
/// Dispatch threads (they block in curl_multi_poll), never on the Swift concurrency pool.
struct HealthProber: Sendable {
    static let curlReady: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    private let queue = DispatchQueue(label: "tandem.health", attributes: .concurrent)
    let host: String

    func probe(_ targets: [(index: Int, port: Int)], timeout: Duration) async -> [ProbeResult] {
        guard !targets.isEmpty else { return [] }
        let host = host
        return await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: Self.round(targets, host: host, timeout: timeout))
            }
        }
    }

    private static func round(_ targets: [(index: Int, port: Int)], host: String, timeout: Duration) -> [ProbeResult] {
        guard curlReady, let multi = curl_multi_init() else {
            return targets.map { ProbeResult(index: $0.index, healthy: false, latency: .zero, problem: "libcurl initialization failed") }
        }
        defer { curl_multi_cleanup(multi) }
        let timeoutMs = max(1, Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
        let discard: tandem_curl_write_callback = { _, size, count, _ in size * count }

        var handles: [(handle: UnsafeMutableRawPointer, index: Int)] = []
        for target in targets {
            guard let easy = curl_easy_init() else { continue }
            _ = tandem_curl_easy_setopt_string(easy, CURLOPT_URL, "http://\(host):\(target.port)/health")
            _ = tandem_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, timeoutMs)
            _ = tandem_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, timeoutMs)
            _ = tandem_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
            _ = tandem_curl_easy_setopt_string(easy, CURLOPT_NOPROXY, "*")
            _ = tandem_curl_easy_setopt_write_function(easy, discard)
            curl_multi_add_handle(multi, easy)
            handles.append((easy, target.index))
        }

        let clock = ContinuousClock()
        let start = clock.now
        var finished: [UnsafeMutableRawPointer: (code: CURLcode, at: ContinuousClock.Instant)] = [:]
        var running: Int32 = 1
        while running > 0 {
            guard curl_multi_perform(multi, &running) == CURLM_OK else { break }
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi, &queued) {
                if message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle {
                    finished[easy] = (message.pointee.data.result, clock.now)
                }
            }
            if running > 0 { _ = curl_multi_poll(multi, nil, 0, 50, nil) }
        }

        var results: [ProbeResult] = []
        for (easy, index) in handles {
            let outcome = finished[easy]
            var status = 0
            _ = tandem_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            curl_multi_remove_handle(multi, easy)
            curl_easy_cleanup(easy)
            let latency = (outcome?.at ?? clock.now) - start
            guard let code = outcome?.code else {
                results.append(ProbeResult(index: index, healthy: false, latency: latency, problem: "probe did not complete"))
                continue
            }
            if code != CURLE_OK {
                results.append(ProbeResult(index: index, healthy: false, latency: latency, problem: String(cString: curl_easy_strerror(code))))
            } else if status != 200 {
                results.append(ProbeResult(index: index, healthy: false, latency: latency, problem: "HTTP \(status)"))
            } else {
                results.append(ProbeResult(index: index, healthy: true, latency: latency, problem: ""))
            }
        }
        return results
    }
}
