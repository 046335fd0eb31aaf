import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import PDProtocol
import SplitwiseScheduler

/// api-server under `--scheduler-name splitwise`: the receiving side (a client's request is
/// placed on the cluster and answered from the results) and the running side (a leg placed
/// here is sent to this instance's own API port, so it runs exactly as a router-sent leg).
enum ScheduledServing {
    /// Marks a request sent by this instance to itself to run a placed leg: served locally,
    /// never placed again.
    static let legHeader = "X-Tandem-Scheduled-Leg"

    /// True when `request` must be placed on the cluster rather than served here.
    static func places(_ request: Request, scheduler: SplitwiseScheduler?, info: DisaggregateInfo?) -> Bool {
        scheduler != nil && info == nil && !request.headers.contains { $0.name.canonicalName == legHeader.lowercased() }
    }

    static func promptTokens(of body: CompletionRequest, context: ModelContext) -> Int {
        switch body.prompt {
        case .text(let text): context.tokens(forPrompt: text).count
        case .texts(let texts): texts.reduce(0) { $0 + context.tokens(forPrompt: $1).count }
        case .tokens(let ids): ids.count
        case .tokenLists(let lists): lists.reduce(0) { $0 + $1.count }
        }
    }

    /// Places the request and answers with what its decode (or mixed) leg answered.
    static func respond(scheduler: SplitwiseScheduler, route: String, body: Data, promptTokens: Int, common: CommonParameters) async throws -> Response {
        let response: DispatchedResponse
        do {
            response = try await scheduler.dispatch(route: route, body: body, promptTokens: promptTokens, choices: common.n ?? 1,
                                                    stream: common.stream ?? false)
        } catch {
            throw OpenAIError(status: .init(code: error.status), message: error.message, type: error.type, code: error.code)
        }
        var headers: HTTPFields = [.contentType: response.contentType]
        switch response.body {
        case .complete(let data):
            return Response(status: .init(code: response.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        case .stream(let pieces):
            headers[.cacheControl] = "no-cache"
            return Response(status: .init(code: response.status), headers: headers, body: ResponseBody { writer in
                for await piece in pieces { try await writer.write(ByteBuffer(bytes: piece)) }
                try await writer.finish(nil)
            })
        }
    }

    /// Runs legs placed on this instance through its own API port.
    struct LegRunner: Sendable {
        /// `http://host:port` of this instance's API, as this host reaches it.
        let baseURL: String
        let apiKey: String?
        let state: ServerState
        let timeout: Duration
        /// Its own client: HTTPClient.shared keeps 8 connections per host, and a decode node
        /// runs far more legs at once, each holding its connection for the whole stream.
        let http: HTTPClient

        init(baseURL: String, apiKey: String?, state: ServerState, timeout: Duration) {
            self.baseURL = baseURL
            self.apiKey = apiKey
            self.state = state
            self.timeout = timeout
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 4096)
            configuration.timeout = .init(connect: .seconds(5))
            configuration.decompression = .disabled
            http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        }

        static func loopbackURL(host: String, port: Int) -> String {
            let reachable = switch host {
            case "", "0.0.0.0": "127.0.0.1"
            case "::", "[::]": "::1"
            default: host
            }
            return PeerEndpoint(host: reachable, port: port).url
        }

        func run(_ task: ScheduledTask, results: ResultSink) async {
            var request = HTTPClientRequest(url: baseURL + task.route)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: ScheduledServing.legHeader, value: task.requestID)
            if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
            request.body = .bytes(ByteBuffer(bytes: task.body))
            let state = state, http = http, seconds = Int64(timeout.components.seconds)
            await withTaskCancellationHandler {
                do {
                    let response = try await http.execute(request, timeout: .seconds(max(1, seconds)))
                    let status = Int(response.status.code)
                    if task.role == .prefill {
                        let body = try await response.body.collect(upTo: 1 << 20)
                        results.send(.prefill, status: status, data: Data(body.readableBytesView))
                        return
                    }
                    results.send(.head, status: status, contentType: response.headers.first(name: "content-type"))
                    for try await piece in response.body { results.send(.data, data: Data(piece.readableBytesView)) }
                    results.send(.end)
                } catch {
                    results.send(.error, status: 502, message: "the \(task.role.rawValue) leg of request '\(task.requestID)' failed on its node: \(error)")
                }
            } onCancel: {
                // The placing instance gave up on it: a PD leg's engine request id is the
                // request id (a mixed leg ends when its closed connection is noticed).
                guard let server = state.context, let engineIDs = server.registry.engineIDs(of: task.requestID) else { return }
                for id in engineIDs { server.service.abort(requestID: id) }
            }
        }
    }
}
