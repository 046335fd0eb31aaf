/// The router's instructions for one PD request, added to the OpenAI request body as
/// `"disaggregate_info"` (FastDeploy's field) and sent to the chosen prefill instance P and
/// decode instance D at once, with the same `request_id` (also sent as `X-Request-Id`).
///
/// - P answers its leg with `PrefillLegResult` (JSON, never streamed) once the KV and the first
///   token are in D's hands, or with an OpenAI-shaped error.
/// - D answers the client's request as a mixed instance would (streamed or not); its tokens
///   start with the first token P handed over.
/// Either side closing its HTTP request early (router gave up, client gone) aborts that leg and
/// frees its blocks; the router then aborts the other leg.
public struct DisaggregateInfo: Codable, Hashable, Sendable {
    /// Which leg the receiving instance plays: `.prefill` or `.decode`.
    public var role: SplitwiseRole
    public var requestID: String
    public var prefill: PeerEndpoint
    public var decode: PeerEndpoint
    /// Chosen by the router: `ipc` when P and D share a host and both offer it, else `tcp`.
    public var transferProtocol: TransferProtocol

    public init(role: SplitwiseRole, requestID: String, prefill: PeerEndpoint, decode: PeerEndpoint,
                transferProtocol: TransferProtocol) {
        self.role = role
        self.requestID = requestID
        self.prefill = prefill
        self.decode = decode
        self.transferProtocol = transferProtocol
    }

    enum CodingKeys: String, CodingKey {
        case role, prefill, decode
        case requestID = "request_id"
        case transferProtocol = "transfer_protocol"
    }
}

/// P's answer to its leg of a PD request.
public struct PrefillLegResult: Codable, Hashable, Sendable {
    public var requestID: String
    public var promptTokens: Int
    /// Prompt tokens whose KV P found in its prefix cache.
    public var cachedPromptTokens: Int
    /// Blocks and bytes pushed to D (blocks D already had are not sent).
    public var transferredBlocks: Int
    public var transferredBytes: Int
    public var transferSeconds: Double

    public init(requestID: String, promptTokens: Int, cachedPromptTokens: Int, transferredBlocks: Int,
                transferredBytes: Int, transferSeconds: Double) {
        self.requestID = requestID
        self.promptTokens = promptTokens
        self.cachedPromptTokens = cachedPromptTokens
        self.transferredBlocks = transferredBlocks
        self.transferredBytes = transferredBytes
        self.transferSeconds = transferSeconds
    }

    enum CodingKeys: String, CodingKey {
        case requestID = "request_id"
        case promptTokens = "prompt_tokens"
        case cachedPromptTokens = "cached_prompt_tokens"
        case transferredBlocks = "transferred_blocks"
        case transferredBytes = "transferred_bytes"
        case transferSeconds = "transfer_seconds"
    }
}
