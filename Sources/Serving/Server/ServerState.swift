import Engine
import Foundation
import Hummingbird
import Synchronization

/// Everything a request handler needs once the model is loaded.
public struct ServingContext: Sendable {
    public let model: ModelContext
    public let service: any InferenceService
    let metrics: ServingMetrics
    let registry: RequestRegistry
    /// Set on prefill and decode instances (`--splitwise-role`).
    public let disaggregation: Disaggregation?

    public init(model: ModelContext, service: any InferenceService, metrics: ServingMetrics,
                disaggregation: Disaggregation? = nil) {
        self.model = model
        self.service = service
        self.metrics = metrics
        self.disaggregation = disaggregation
        registry = RequestRegistry()
    }

    /// Starts choices on the engine, known to the control plane's `/abort` by their response id
    /// until they end. With `decodeLeg`, the one job is D's leg of a PD request (known to
    /// `/abort` by its PD request id).
    func start(_ jobs: [ChoiceJob], arrival: ContinuousClock.Instant, decodeLeg: Bool = false) throws(OpenAIError) -> ChoiceGeneration.Started {
        let service = service, disaggregation = disaggregation
        let submit: @Sendable (GenerationRequest) throws -> AsyncStream<GenerationEvent> = { request in
            if decodeLeg, let disaggregation { return try disaggregation.submitDecode(request) }
            return try service.submit(request)
        }
        let started = try ChoiceGeneration.start(jobs, service: service, tokenizer: model.tokenizer, metrics: metrics,
                                                 arrival: arrival, submit: submit)
        let responseID = decodeLeg ? jobs.first?.request.id ?? "" : RequestRegistry.responseID(of: jobs.first?.request.id ?? "")
        registry.add(responseID, engineIDs: jobs.map(\.request.id))
        let registry = registry
        let cancel = started.cancel
        return ChoiceGeneration.Started(events: started.events, cancel: {
            cancel()
            registry.remove(responseID)
        })
    }
}

/// The responses in flight by id (`cmpl-…`, `chatcmpl-…`), with their engine requests, so the
/// control plane can abort a response by the id its client saw.
final class RequestRegistry: Sendable {
    private let requests = Mutex<[String: [String]]>([:])

    /// Engine request ids are `<response id>-<choice index>`.
    static func responseID(of engineID: String) -> String {
        guard let dash = engineID.lastIndex(of: "-") else { return engineID }
        return String(engineID[..<dash])
    }

    func add(_ responseID: String, engineIDs: [String]) { requests.withLock { $0[responseID] = engineIDs } }
    func remove(_ responseID: String) { _ = requests.withLock { $0.removeValue(forKey: responseID) } }
    func engineIDs(of responseID: String) -> [String]? { requests.withLock { $0[responseID] } }
    func allEngineIDs() -> [String] { requests.withLock { $0.values.flatMap { $0 } } }
}

/// Where the server is in its life: `/health` is 200 only while `serving`.
public enum ServerPhase: Sendable, Equatable {
    case loading
    case serving
    case draining
    case failed(String)

    public var name: String {
        switch self {
        case .loading: "loading"
        case .serving: "serving"
        case .draining: "draining"
        case .failed: "failed"
        }
    }
}

/// The server's phase and, once loaded, its serving context; shared by every listener.
public final class ServerState: Sendable {
    private let state = Mutex<(phase: ServerPhase, context: ServingContext?)>((.loading, nil))

    public init() {}

    public var phase: ServerPhase { state.withLock { $0.phase } }
    public var context: ServingContext? { state.withLock { $0.context } }

    public func loaded(_ context: ServingContext) { state.withLock { $0 = (.serving, context) } }
    public func failed(_ reason: String) { state.withLock { $0.phase = .failed(reason) } }

    /// Stops admitting requests: `/health` turns 503 and the engine refuses new ones.
    public func beginDrain() {
        let context = state.withLock { state -> ServingContext? in
            if state.phase == .serving { state.phase = .draining }
            return state.context
        }
        context?.service.beginDrain()
    }

    /// True while the engine loop is alive and admitting requests.
    public var isHealthy: Bool {
        let (phase, context) = state.withLock { ($0.phase, $0.context) }
        return phase == .serving && (context?.service.isServing ?? false)
    }

    /// The context for a request, or 503 while loading, draining or after the engine died.
    public func serving() throws(OpenAIError) -> ServingContext {
        let (phase, context) = state.withLock { ($0.phase, $0.context) }
        switch phase {
        case .loading: throw OpenAIError.notServing("the model is loading")
        case .draining: throw OpenAIError.notServing("the server is draining")
        case .failed(let reason): throw OpenAIError.notServing(reason)
        case .serving:
            guard let context, context.service.isServing else { throw OpenAIError.notServing("the engine loop has stopped") }
            return context
        }
    }

    /// The context once loaded, whatever the phase (for `/load` and `/metrics` while draining).
    public func loadedContext() throws(OpenAIError) -> ServingContext {
        guard let context else { throw OpenAIError.notServing("the model is loading") }
        return context
    }
}

enum JSONResponse {
    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder.api.encode(value))))
    }

    static func text(_ text: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
