import Engine
import Foundation
import Hummingbird
import SplitwiseScheduler

/// The routes of the API port: OpenAI's, health and load, metrics, and what vllm-router and
/// sglang-router call on a worker. Each route is a line or two over the endpoint types.
public enum APIRoutes {
    public struct Options: Sendable {
        public var apiKey: String?
        public var maxBodyBytes: Int
        /// Facts for `/get_server_info`.
        public var serverInfo: [String: String]
        /// `--scheduler-name splitwise`: requests are placed on the cluster.
        public var scheduler: SplitwiseScheduler?

        public init(apiKey: String?, maxBodyBytes: Int, serverInfo: [String: String], scheduler: SplitwiseScheduler? = nil) {
            self.apiKey = apiKey
            self.maxBodyBytes = maxBodyBytes
            self.serverInfo = serverInfo
            self.scheduler = scheduler
        }
    }

    public static func router(state: ServerState, metrics: ServingMetrics, options: Options) -> Router<BasicRequestContext> {
        let router = Router()
        if let apiKey = options.apiKey { router.add(middleware: APIKeyMiddleware(key: apiKey)) }
        let limit = options.maxBodyBytes
        let scheduler = options.scheduler

        router.post("v1/completions") { request, _ -> Response in
            let arrival = ContinuousClock.now
            let raw = try await readBody(request, limit: limit)
            let body = try RequestDecoding.decode(CompletionRequest.self, from: raw)
            let server = try state.serving()
            if let scheduler, ScheduledServing.places(request, scheduler: scheduler, info: body.common.disaggregateInfo) {
                return try await ScheduledServing.respond(scheduler: scheduler, route: "/v1/completions", body: raw,
                                                          promptTokens: ScheduledServing.promptTokens(of: body, context: server.model),
                                                          common: body.common)
            }
            return try await CompletionsEndpoint(server: server).respond(to: body, arrival: arrival)
        }
        router.post("v1/chat/completions") { request, _ -> Response in
            let arrival = ContinuousClock.now
            let raw = try await readBody(request, limit: limit)
            let body = try RequestDecoding.decode(ChatCompletionRequest.self, from: raw)
            let server = try state.serving()
            if let scheduler, ScheduledServing.places(request, scheduler: scheduler, info: body.common.disaggregateInfo) {
                return try await ScheduledServing.respond(scheduler: scheduler, route: "/v1/chat/completions", body: raw,
                                                          promptTokens: try server.model.tokens(forChat: body.messages).count,
                                                          common: body.common)
            }
            return try await ChatCompletionsEndpoint(server: server).respond(to: body, arrival: arrival)
        }
        router.get("v1/models") { _, _ -> Response in
            let model = try state.loadedContext().model
            return try JSONResponse.make(ModelList(data: [.init(id: model.servedModelName, created: model.created,
                                                                root: model.modelPath, maxModelLen: model.maxModelLength)]))
        }

        router.get("health") { _, _ -> Response in
            if let problem = scheduler?.problem, state.isHealthy {
                return try JSONResponse.make(["status": "scheduler_unavailable", "detail": "splitwise scheduler: \(problem)"],
                                             status: .serviceUnavailable)
            }
            if state.isHealthy { return JSONResponse.text("") }
            return try JSONResponse.make(["status": state.phase.name], status: .serviceUnavailable)
        }
        router.get("load") { _, _ -> Response in
            try JSONResponse.make(try state.loadedContext().service.load())
        }
        router.get("metrics") { _, _ -> Response in
            metricsResponse(state: state, metrics: metrics, scheduler: scheduler)
        }

        // sglang-router and vllm-router.
        router.get("get_model_info") { _, _ -> Response in
            let model = try state.loadedContext().model
            return try JSONResponse.make(ModelInfo(modelPath: model.modelPath, tokenizerPath: model.modelPath,
                                                   servedModelName: model.servedModelName, isGeneration: true,
                                                   maxModelLen: model.maxModelLength))
        }
        router.get("get_server_info") { _, _ -> Response in
            var info = options.serverInfo
            info["status"] = state.phase.name
            return try JSONResponse.make(info)
        }
        router.get("get_load") { _, _ -> Response in
            let load = try state.loadedContext().service.load()
            return try JSONResponse.make(LoadReport(load))
        }
        let flush: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            let flushed = try state.loadedContext().service.flushPrefixCache()
            return flushed ? JSONResponse.text("Cache flushed.\n")
                : JSONResponse.text("Cache not flushed: requests are running.\n", status: .badRequest)
        }
        router.post("flush_cache", use: flush)
        router.get("flush_cache", use: flush)
        router.get("health_generate") { _, _ -> Response in
            try await healthGenerate(state: state)
        }
        return router
    }

    /// The metrics text (the engine's figures when it is loaded).
    static func metricsResponse(state: ServerState, metrics: ServingMetrics, scheduler: SplitwiseScheduler? = nil) -> Response {
        let service = state.context?.service
        return JSONResponse.text(metrics.text(load: service?.load(), counters: service?.counters()) + (scheduler?.metricsText() ?? ""),
                                 contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    /// A real one-token generation: 200 once it finishes, 503 if it cannot.
    static func healthGenerate(state: ServerState) async throws -> Response {
        let server = try state.serving()
        let request = GenerationRequest(id: ResponseID.make("health-") + "-0", promptTokens: server.model.tokens(forPrompt: "Hello"),
                                        maxTokens: 1)
        let generation = try server.start([ChoiceJob(index: 0, request: request, stops: [])], arrival: .now)
        defer { generation.cancel() }
        for try await (_, event) in generation.events {
            if case .finished = event { return JSONResponse.text("") }
        }
        throw OpenAIError.notServing("the health generation did not finish")
    }

    /// The body, up to `limit` bytes (413 beyond, checked on Content-Length first).
    static func readBody(_ request: Request, limit: Int) async throws -> Data {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw OpenAIError.bodyTooLarge(limit: limit)
        }
        var data = Data()
        for try await buffer in request.body {
            guard data.count + buffer.readableBytes <= limit else { throw OpenAIError.bodyTooLarge(limit: limit) }
            data.append(contentsOf: buffer.readableBytesView)
        }
        return data
    }

    struct ModelInfo: Codable {
        var modelPath: String
        var tokenizerPath: String
        var servedModelName: String
        var isGeneration: Bool
        var maxModelLen: Int
        enum CodingKeys: String, CodingKey {
            case modelPath = "model_path", tokenizerPath = "tokenizer_path", servedModelName = "served_model_name"
            case isGeneration = "is_generation", maxModelLen = "max_model_len"
        }
    }

    /// sglang's `/get_load` shape (`load` is what sglang-router reads) plus the block figures.
    struct LoadReport: Codable {
        var load: Int
        var numReqs: Int
        var numWaitingReqs: Int
        var numTokens: Int
        var kvBlocksUsed: Int
        var kvBlocksFree: Int
        init(_ load: EngineLoad) {
            self.load = load.runningRequests + load.waitingRequests
            numReqs = load.runningRequests
            numWaitingReqs = load.waitingRequests
            numTokens = load.kvBlocksUsed * load.blockSize
            kvBlocksUsed = load.kvBlocksUsed
            kvBlocksFree = load.kvBlocksFree
        }
        enum CodingKeys: String, CodingKey {
            case load, numReqs = "num_reqs", numWaitingReqs = "num_waiting_reqs", numTokens = "num_tokens"
            case kvBlocksUsed = "kv_blocks_used", kvBlocksFree = "kv_blocks_free"
        }
    }
}

/// `--api-key`: the OpenAI routes need `Authorization: Bearer <key>` (health, load and metrics
/// stay open for probes and scrapers).
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path.hasPrefix("/v1/") && request.headers[.authorization] != "Bearer \(key)" {
            throw OpenAIError.unauthorized
        }
        return try await next(request, context)
    }
}
