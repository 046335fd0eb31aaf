import AsyncHTTPClient
import Hummingbird
import NIOCore

/// The router's own routes on Hummingbird: models, health, readiness, liveness and metrics
/// (registration is RegistrationRoutes'; the relayed OpenAI endpoints are served in front of
/// Hummingbird, by RelayChannelHandler).
struct RouterRoutes: Sendable {
    let relay: Relay
    let splitwise: Bool

    func add(to router: Router<BasicRequestContext>) {
        let relay = relay, table = relay.table
        router.get("v1/models") { _, _ -> Response in try await models() }

        router.get("liveness") { _, _ -> Response in try json(["status": "alive"]) }
        router.get("health") { _, _ -> Response in try json(["status": "healthy"]) }
        router.get("readiness") { _, _ -> Response in
            let ready = canServe()
            let statuses = table.statuses(at: .now)
            return try json(Readiness(ready: ready, healthyWorkers: statuses.filter(\.healthy).count, workers: statuses.count),
                            status: ready ? .ok : .serviceUnavailable)
        }
        router.get("metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: relay.metrics.text(workers: table.statuses(at: .now),
                                                                                    queue: relay.admission))))
        }
    }

    struct Readiness: Encodable {
        var ready: Bool
        var healthyWorkers: Int
        var workers: Int
        enum CodingKeys: String, CodingKey {
            case ready, workers
            case healthyWorkers = "healthy_workers"
        }
    }

    /// A mixed worker, or (with --splitwise) a prefill and a decode one.
    func canServe() -> Bool {
        let table = relay.table
        if !table.candidates(role: .mixed, at: .now).isEmpty { return true }
        return splitwise && !table.candidates(role: .prefill, at: .now).isEmpty && !table.candidates(role: .decode, at: .now).isEmpty
    }

    /// `GET /v1/models` from a healthy worker that answers whole requests (mixed or decode).
    func models() async throws -> Response {
        let now = ContinuousClock.now
        let candidates = relay.table.candidates(role: .mixed, at: now) + relay.table.candidates(role: .decode, at: now)
        var lastError = "no healthy mixed or decode worker"
        for worker in candidates {
            do {
                let response = try await relay.workers.http.execute(HTTPClientRequest(url: worker.url + "/v1/models"), timeout: .seconds(10))
                let body = try await response.body.collect(upTo: 1 << 20)
                return Response(status: .init(code: Int(response.status.code)), headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: body))
            } catch {
                lastError = "\(worker.url): \(WorkerClient.describe(error))"
            }
        }
        throw candidates.isEmpty ? RouterError.noWorker("mixed or decode") : RouterError.upstreamFailed(attempts: candidates.count, last: lastError)
    }
}
