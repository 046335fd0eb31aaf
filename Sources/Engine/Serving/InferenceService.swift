import Foundation
import PDProtocol

// The contract between the HTTP layer (api-server) and the serving engine (block manager,
// scheduler, engine loop). Token ids in, token events out; no HTTP and no text here, except
// that stop *strings* are the HTTP layer's job: it detokenizes, and calls `abort` once a stop
// string has matched.

/// One generation request as the engine sees it. `n > 1` in the API becomes n requests.
public struct GenerationRequest: Sendable {
    /// Unique among the requests in flight; `abort` takes it.
    public var id: String
    public var promptTokens: [Int32]
    /// Most tokens to generate (the engine stops earlier at end-of-generation or a stop token).
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Token ids that end generation besides the model's end-of-generation tokens.
    public var stopTokenIDs: Set<Int32>
    /// Keep generating through end-of-generation tokens (benchmarks).
    public var ignoreEOS: Bool
    /// Added to a token's logit before sampling (OpenAI `logit_bias`, -100 ... 100).
    public var logitBias: [Int32: Float]
    /// When set, the log-probability of every prompt token (the first has none) and this many
    /// top alternatives per position are reported before the first generated token
    /// (`echo` with `logprobs` on completions, as lm-evaluation-harness asks).
    public var promptLogprobs: Int?

    public init(id: String, promptTokens: [Int32], maxTokens: Int, sampling: SamplingParameters = .greedy,
                stopTokenIDs: Set<Int32> = [], ignoreEOS: Bool = false, logitBias: [Int32: Float] = [:],
                promptLogprobs: Int? = nil) {
        self.id = id
        self.promptTokens = promptTokens
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopTokenIDs = stopTokenIDs
        self.ignoreEOS = ignoreEOS
        self.logitBias = logitBias
        self.promptLogprobs = promptLogprobs
    }
}

/// The log-probability of one prompt token given the tokens before it, with alternatives.
public struct PromptTokenLogprob: Sendable, Equatable {
    public let token: Int32
    public let logprob: Float
    public let topLogprobs: [TokenLogprob]

    public init(token: Int32, logprob: Float, topLogprobs: [TokenLogprob]) {
        self.token = token
        self.logprob = logprob
        self.topLogprobs = topLogprobs
    }
}

public enum FinishReason: String, Sendable, Codable {
    /// End-of-generation token or a stop token id (the token itself is not emitted).
    case stop
    /// `maxTokens` or the model length was reached.
    case length
    /// `abort` was called (client gone, stop string matched, drain deadline).
    case abort
}

/// Per-request figures for metrics and `usage`.
public struct RequestStatistics: Sendable, Equatable {
    public var promptTokens: Int
    /// Prompt tokens whose KV came from the prefix cache.
    public var cachedPromptTokens: Int
    public var outputTokens: Int
    /// Seconds from `submit` until the request was first scheduled.
    public var queueSeconds: Double
    /// Times the request was preempted and recomputed.
    public var preemptions: Int

    public init(promptTokens: Int = 0, cachedPromptTokens: Int = 0, outputTokens: Int = 0,
                queueSeconds: Double = 0, preemptions: Int = 0) {
        self.promptTokens = promptTokens
        self.cachedPromptTokens = cachedPromptTokens
        self.outputTokens = outputTokens
        self.queueSeconds = queueSeconds
        self.preemptions = preemptions
    }
}

/// What a request's stream yields, in order: `promptLogprobs` (only when asked), `token` for
/// each generated token, then exactly one `finished` — or `failed` if the engine could not
/// complete it. The stream ends after the last event.
public enum GenerationEvent: Sendable {
    case promptLogprobs([PromptTokenLogprob?])
    case token(SampledToken)
    case finished(FinishReason, RequestStatistics)
    case failed(String)
}

/// A snapshot for `/load`, `/health` and the router's load-aware policies: the wire type the
/// router decodes, so both ends share one definition.
public typealias EngineLoad = InstanceLoad

/// Monotonic counters since start, for `/metrics`.
public struct EngineCounters: Sendable, Equatable {
    public var promptTokens = 0
    public var generationTokens = 0
    public var preemptions = 0
    /// Prompt tokens looked up in the prefix cache, and how many of them were found.
    public var prefixCacheQueries = 0
    public var prefixCacheHits = 0
    public var finishedRequests = 0
    public var abortedRequests = 0
    /// Requests ended by `failed` (the forward pass threw, or the engine stopped).
    public var failedRequests = 0

    public init() {}
}

/// Why a request was refused before it was queued. The HTTP layer maps these to 400 / 429 / 503.
public enum AdmissionError: Error, Equatable, CustomStringConvertible {
    /// Prompt plus `maxTokens` exceeds the maximum model length.
    case tooLong(promptTokens: Int, maxTokens: Int, maxModelLength: Int)
    /// The request needs more KV blocks than the whole pool has.
    case exceedsCachePool(blocksNeeded: Int, blocksTotal: Int)
    /// The waiting queue is at its limit; retry later.
    case queueFull(waiting: Int, limit: Int)
    /// Loading, draining, or the engine loop died.
    case notServing(String)
    case invalid(String)

    public var description: String {
        switch self {
        case .tooLong(let p, let m, let limit):
            return "This model's maximum context length is \(limit) tokens. However, you requested \(p + m) tokens (\(p) in the prompt, \(m) for the completion). Please reduce the length of the prompt or max_tokens."
        case .exceedsCachePool(let needed, let total):
            return "the request needs \(needed) KV cache blocks but the whole pool has \(total)"
        case .queueFull(let waiting, let limit):
            return "the server is busy: \(waiting) requests are waiting (limit \(limit)); retry later"
        case .notServing(let why): return "the engine is not serving: \(why)"
        case .invalid(let why): return why
        }
    }
}

/// The serving engine as the HTTP layer uses it. Implementations are thread-safe.
public protocol InferenceService: AnyObject, Sendable {
    /// Queues a request; its events arrive on the returned stream. Throws `AdmissionError`.
    func submit(_ request: GenerationRequest) throws -> AsyncStream<GenerationEvent>
    /// Ends a request now: frees its blocks; its stream yields `finished(.abort, …)` unless it
    /// had already finished. Unknown ids are ignored.
    func abort(requestID: String)
    func load() -> EngineLoad
    func counters() -> EngineCounters
    /// True while the engine loop runs and accepts requests.
    var isServing: Bool { get }
    /// Stops admitting requests; running and waiting ones continue. `isServing` turns false.
    func beginDrain()
    /// Drops every cached prefix block that no request holds; false if requests are running.
    func flushPrefixCache() -> Bool
}

/// How the serving engine is sized and scheduled (api-server's flags, FastDeploy/vLLM names).
public struct ServingConfiguration: Sendable, Equatable {
    /// `--block-size`: tokens per KV block.
    public var blockSize = 16
    /// `--num-gpu-blocks-override`: the pool size in blocks; wins over `kvCacheMemoryBytes`.
    public var numBlocksOverride: Int?
    /// `--kv-cache-memory`: the pool size as a byte budget.
    public var kvCacheMemoryBytes = 1 << 30
    /// `--kv-cache-dtype`.
    public var kvCacheDataType = KVCacheLayout.DataType.float32
    /// `--enable-prefix-caching` / `--no-enable-prefix-caching`.
    public var enablePrefixCaching = true
    /// `--max-num-seqs`: most requests in the running batch.
    public var maxNumSeqs = 64
    /// `--max-num-batched-tokens`: most tokens (prefill chunks + decode steps) in one forward step.
    /// 512, not a GPU server's 2048: on a CPU a step of 2048 prefill tokens holds every running
    /// sequence for seconds, and 512-token chunks measured better output tokens/s, TTFT and p99
    /// TPOT at once (BENCHMARKS.md, "Serving").
    public var maxNumBatchedTokens = 512
    /// `--max-model-len`: prompt + output limit; nil means the model's context length.
    public var maxModelLength: Int?
    /// Most requests waiting for admission before `submit` refuses with `queueFull`.
    public var maxWaitingRequests = 1024
    /// `--threads`: compute threads.
    public var threads = 1
    /// KV storage in a shared-memory file that a prefill instance on this host can map (PD decode
    /// instances offering `ipc`).
    public var sharedKVCache = false
    /// `--prefill-batching-policy`: the order waiting requests are admitted in.
    public var prefillBatchingPolicy = PrefillBatchingPolicy.fcfs
    /// `--prefill-batching-max-wait`: under gtsf, seconds after which a waiting request goes
    /// ahead of every length group.
    public var prefillBatchingMaxWait: Double = 10

    public init() {}
}
