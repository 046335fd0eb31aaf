import Foundation
import Hummingbird
import Logging

/// The supervisor's HTTP endpoint on the control port: `GET /health` (200 only when every
/// rank is ready, else 503; per-rank states in both), `GET /ranks` (every rank in full) and
/// `GET /metrics` (Prometheus text).
public enum ControlServer {
    struct HealthReport: Codable {
        struct Rank: Codable {
            var rank: Int
            var state: RankPhase
            var detail: String?
        }
        var status: String
        var ready: Int
        var total: Int
        var ranks: [Rank]
    }

    static func application(supervisor: Supervisor, host: String, port: Int, logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        router.get("health") { _, _ -> Response in
            let statuses = await supervisor.statuses()
            let ready = statuses.filter { $0.state == .ready }.count
            let report = HealthReport(status: ready == statuses.count ? "ok" : "degraded", ready: ready, total: statuses.count,
                                      ranks: statuses.map { .init(rank: $0.rank, state: $0.state, detail: $0.detail) })
            return json(report, status: ready == statuses.count ? .ok : .serviceUnavailable, logger: logger)
        }
        router.get("ranks") { _, _ -> Response in
            json(await supervisor.statuses(), status: .ok, logger: logger)
        }
        router.get("metrics") { _, _ -> Response in
            let text = await supervisor.metricsText()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return Application(router: router,
                           configuration: .init(address: .hostname(host, port: port), serverName: "multi-api-server"),
                           logger: logger)
    }

    /// `value` as JSON with `status`; 500 with the reason as text when it cannot be encoded.
    public static func json(_ value: some Encodable, status: HTTPResponse.Status, logger: Logger) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            let data = try encoder.encode(value)
            return Response(status: status, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(bytes: data)))
        } catch {
            let message = "cannot encode the reply as JSON: \(error)"
            logger.error("control endpoint: \(message)")
            return Response(status: .internalServerError, headers: [.contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
        }
    }
}
