import CCurl
import Dispatch
import FleetPlanning
import Foundation

/// Takes ranks out of the router (`POST /deregister {"url": …}`, the PD contract) before the
/// supervisor kills, restarts or stops them, so the router sends them nothing more; a rank
/// registers itself again once it is back. libcurl on Dispatch threads, as `HealthProber`.
struct RouterDeregistration: Sendable {
    let settings: RouterSettings
    private let queue = DispatchQueue(label: "tandem.router", attributes: .concurrent)

    init(settings: RouterSettings) {
        self.settings = settings
    }

    /// nil once the router no longer lists the worker (200, or 404: it did not), else what
    /// went wrong ("HTTP 401", "Couldn't connect to server", …).
    func deregister(workerURL: String, timeout: Duration) async -> String? {
        let settings = settings
        return await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: Self.post(workerURL: workerURL, settings: settings, timeout: timeout)) }
        }
    }

    private static func post(workerURL: String, settings: RouterSettings, timeout: Duration) -> String? {
        guard HealthProber.curlReady, let easy = curl_easy_init() else { return "libcurl initialization failed" }
        defer { curl_easy_cleanup(easy) }
        var headers: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "Content-Type: application/json")
        if let token = settings.token { headers = curl_slist_append(headers, "Authorization: Bearer \(token)") }
        defer { curl_slist_free_all(headers) }
        let body = String(decoding: (try? JSONEncoder().encode(["url": workerURL])) ?? Data(), as: UTF8.self)
        let timeoutMs = max(1, Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
        let discard: tandem_curl_write_callback = { _, size, count, _ in size * count }
        _ = tandem_curl_easy_setopt_string(easy, CURLOPT_URL, settings.baseURL + "/deregister")
        _ = tandem_curl_easy_setopt_string(easy, CURLOPT_COPYPOSTFIELDS, body)
        _ = tandem_curl_easy_setopt_pointer(easy, CURLOPT_HTTPHEADER, headers)
        _ = tandem_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, timeoutMs)
        _ = tandem_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, timeoutMs)
        _ = tandem_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = tandem_curl_easy_setopt_string(easy, CURLOPT_NOPROXY, "*")
        _ = tandem_curl_easy_setopt_write_function(easy, discard)
        let code = curl_easy_perform(easy)
        guard code == CURLE_OK else { return String(cString: curl_easy_strerror(code)) }
        var status = 0
        _ = tandem_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        return status == 200 || status == 404 ? nil : "HTTP \(status)"
    }
}
