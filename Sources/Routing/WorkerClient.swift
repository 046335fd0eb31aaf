import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import PDProtocol

/// The router's HTTP calls to workers other than the relayed requests: `/health`, `/load`
/// and `POST /abort` on the engine-worker-queue port.
public struct WorkerClient: Sendable {
    public let http: HTTPClient

    public init(http: HTTPClient) {
        self.http = http
    }

    /// nil when `GET url/health` answered 200, else what went wrong.
    public func healthProblem(_ url: String, timeout: Duration) async -> String? {
        do {
            var request = HTTPClientRequest(url: url + "/health")
            request.method = .GET
            let response = try await http.execute(request, timeout: .nanoseconds(Int64(timeout.nanoseconds)))
            _ = try? await response.body.collect(upTo: 1 << 16)
            return response.status.code == 200 ? nil : "HTTP \(response.status.code)"
        } catch {
            return Self.describe(error)
        }
    }

    /// `GET url/load`, nil when it does not answer with an InstanceLoad.
    public func load(_ url: String, timeout: Duration) async -> InstanceLoad? {
        do {
            let response = try await http.execute(HTTPClientRequest(url: url + "/load"),
                                                  timeout: .nanoseconds(Int64(timeout.nanoseconds)))
            let body = try await response.body.collect(upTo: 1 << 16)
            guard response.status.code == 200 else { return nil }
            return try JSONDecoder().decode(InstanceLoad.self, from: Data(buffer: body))
        } catch {
            return nil
        }
    }

    /// The first model of `GET url/v1/models` (the served model name), nil when there is none.
    public func modelName(_ url: String, timeout: Duration) async -> String? {
        struct Models: Decodable {
            struct Model: Decodable { var id: String }
            var data: [Model]
        }
        do {
            let response = try await http.execute(HTTPClientRequest(url: url + "/v1/models"),
                                                  timeout: .nanoseconds(Int64(timeout.nanoseconds)))
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status.code == 200 else { return nil }
            return try JSONDecoder().decode(Models.self, from: Data(buffer: body)).data.first?.id
        } catch {
            return nil
        }
    }

    /// `POST /abort {"request_id": id}` on the worker's engine-worker-queue port (when it has
    /// one). Best effort: a 404 means the request had already ended.
    public func abort(_ requestID: String, on worker: PeerEndpoint, timeout: Duration = .seconds(2)) async {
        guard let port = worker.engineWorkerQueuePort else { return }
        let endpoint = PeerEndpoint(host: worker.host, port: port)
        var request = HTTPClientRequest(url: endpoint.url + "/abort")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-Request-Id", value: requestID)
        guard let body = try? JSONEncoder().encode(AbortRequest(requestID: requestID)) else { return }
        request.body = .bytes(ByteBuffer(bytes: body))
        if let response = try? await http.execute(request, timeout: .nanoseconds(Int64(timeout.nanoseconds))) {
            _ = try? await response.body.collect(upTo: 1 << 16)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? UpstreamError { return error.description }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "timed out"
            case .remoteConnectionClosed: return "connection closed by the worker"
            case .cancelled: return "cancelled"
            default: return "\(error)"
            }
        }
        if let error = error as? ChannelError, case .connectTimeout = error { return "timed out" }
        let text = "\(error)"
        if text.contains("Connection refused") || text.contains("connectionRefused") { return "connection refused" }
        return text
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
