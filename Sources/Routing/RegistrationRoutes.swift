import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import PDProtocol

/// The worker table's HTTP side: `POST /register` (also the heartbeat), `POST /deregister`,
/// `GET /registered`, `GET/POST /workers`, `DELETE /workers/{url}`. Changes need the
/// `--register-token` when the router has one; a new worker is added only once its `/health`
/// answered 200.
struct RegistrationRoutes: Sendable {
    let table: WorkerTable
    let client: WorkerClient
    let token: String?
    let healthTimeout: Duration
    let logger: Logger

    func add(to router: Router<BasicRequestContext>) {
        router.post("register") { request, _ -> Response in
            try authorize(request)
            let registration = try await decode(WorkerRegistration.self, from: request, what: "registration")
            return try json(RegistrationReply(status: try await admit(registration, source: .registered)))
        }
        router.post("deregister") { request, _ -> Response in
            try authorize(request)
            let target = try await decode(DeregistrationRequest.self, from: request, what: "deregistration")
            return try remove(target.url)
        }
        router.get("registered") { _, _ -> Response in
            try json(table.registrations())
        }
        router.get("workers") { _, _ -> Response in
            try json(table.statuses(at: .now))
        }
        router.post("workers") { request, _ -> Response in
            try authorize(request)
            let body = try await request.body.collect(upTo: 1 << 20)
            let registration: WorkerRegistration
            if let full = try? JSONDecoder().decode(WorkerRegistration.self, from: Data(buffer: body)) {
                registration = full
            } else {
                let short = try decodeBody(ShortWorker.self, Data(buffer: body), what: "worker")
                registration = try StaticWorker.parse(short.url, role: short.role ?? .mixed)
            }
            return try json(RegistrationReply(status: try await admit(registration, source: .configured)))
        }
        router.delete("workers/**") { request, context -> Response in
            try authorize(request)
            let raw = context.parameters.getCatchAll().joined(separator: "/")
            var url = raw.removingPercentEncoding ?? raw
            // An unencoded URL arrives with its "//" collapsed: http:/host:port.
            if url.hasPrefix("http:/"), !url.hasPrefix("http://") { url = "http://" + url.dropFirst("http:/".count) }
            return try remove(url)
        }
    }

    struct ShortWorker: Decodable {
        var url: String
        var role: SplitwiseRole?
    }

    /// A new worker joins once its `/health` answered 200 (else `unhealthyWorker`); a known one is refreshed.
    func admit(_ registration: WorkerRegistration, source: WorkerSource) async throws -> RegistrationReply.Status {
        if table.contains(registration.url) {
            return table.upsert(registration, source: source, admitted: false)
        }
        if let problem = await client.healthProblem(registration.url, timeout: healthTimeout) {
            logger.warning("worker \(registration.url) not added: /health \(problem)")
            throw RouterError.unhealthyWorker(registration.url, problem)
        }
        let status = table.upsert(registration, source: source, admitted: true)
        logger.info("worker \(registration.url) (\(registration.role.rawValue)) \(status.rawValue)")
        return status
    }

    private func remove(_ url: String) throws -> Response {
        guard table.remove(url) else { throw RouterError.unknownWorker(url) }
        logger.info("worker \(url) removed")
        return try json(["status": "deregistered"])
    }

    private func authorize(_ request: Request) throws {
        guard let token else { return }
        guard request.headers[.authorization] == "Bearer \(token)" else { throw RouterError.unauthorized }
    }

    private func decode<T: Decodable>(_ type: T.Type, from request: Request, what: String) async throws -> T {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: 1 << 20)
        } catch {
            throw RouterError(status: .contentTooLarge, message: "The \(what) body is larger than 1 MiB.", type: "invalid_request_error")
        }
        return try decodeBody(type, Data(buffer: body), what: what)
    }

    private func decodeBody<T: Decodable>(_ type: T.Type, _ data: Data, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw RouterError.malformed(what, RegistrationDecoding.explain(error))
        }
    }
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return Response(status: status, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}
