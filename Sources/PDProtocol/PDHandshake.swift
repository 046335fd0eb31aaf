/// What a prefill instance P and a decode instance D must agree on before any KV byte moves
/// between them (the layout handshake). The number of blocks may differ; nothing else may.
public struct KVLayoutDescription: Codable, Hashable, Sendable {
    /// Identifies the weights (and so the tokenizer): equal fingerprints, equal model.
    public var modelFingerprint: String
    public var layers: Int
    public var kvHeads: Int
    public var headDim: Int
    public var blockSize: Int
    /// `float32` or `float16`.
    public var kvDataType: String

    public init(modelFingerprint: String, layers: Int, kvHeads: Int, headDim: Int, blockSize: Int, kvDataType: String) {
        self.modelFingerprint = modelFingerprint
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.blockSize = blockSize
        self.kvDataType = kvDataType
    }

    /// Why `prefill` (P's layout) cannot send KV into `self` (D's), naming the first field
    /// that differs and both values; nil when they match.
    public func mismatch(prefill: KVLayoutDescription) -> String? {
        let fields: [(String, String, String)] = [
            ("model_fingerprint", prefill.modelFingerprint, modelFingerprint),
            ("layers", String(prefill.layers), String(layers)),
            ("kv_heads", String(prefill.kvHeads), String(kvHeads)),
            ("head_dim", String(prefill.headDim), String(headDim)),
            ("block_size", String(prefill.blockSize), String(blockSize)),
            ("kv_cache_dtype", prefill.kvDataType, kvDataType),
        ]
        guard let (name, p, d) = fields.first(where: { $0.1 != $0.2 }) else { return nil }
        return "KV layout mismatch: \(name) is \(p) on the prefill instance but \(d) on the decode instance"
    }

    enum CodingKeys: String, CodingKey {
        case layers
        case modelFingerprint = "model_fingerprint"
        case kvHeads = "kv_heads"
        case headDim = "head_dim"
        case blockSize = "block_size"
        case kvDataType = "kv_cache_dtype"
    }
}

/// P → D, first message on the PD-comm connection: who P is, the request, its layout.
public struct PDHello: Codable, Hashable, Sendable {
    public var requestID: String
    public var layout: KVLayoutDescription
    /// The prompt P will prefill: D checks it tokenized the same prompt.
    public var promptTokens: Int
    public var promptHash: UInt64
    public var transferProtocol: TransferProtocol

    public init(requestID: String, layout: KVLayoutDescription, promptTokens: Int, promptHash: UInt64,
                transferProtocol: TransferProtocol) {
        self.requestID = requestID
        self.layout = layout
        self.promptTokens = promptTokens
        self.promptHash = promptHash
        self.transferProtocol = transferProtocol
    }

    enum CodingKeys: String, CodingKey {
        case layout
        case requestID = "request_id"
        case promptTokens = "prompt_tokens"
        case promptHash = "prompt_hash"
        case transferProtocol = "transfer_protocol"
    }

    /// FNV-1a over the token ids: the same on both ends for the same prompt.
    public static func hash(tokens: [Int32]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for token in tokens {
            var v = UInt32(bitPattern: token)
            for _ in 0..<4 {
                hash = (hash ^ UInt64(v & 0xff)) &* 0x100_0000_01b3
                v >>= 8
            }
        }
        return hash
    }
}

/// D → P: the blocks D reserved for the request (prompt plus the first generated token).
/// D already holds `blockIDs[0..<cachedBlocks]` (its own prefix-cache hits); P sends the
/// prompt's blocks `cachedBlocks..<promptBlocks`, every layer, and nothing else.
public struct PDReservation: Codable, Hashable, Sendable {
    public var requestID: String
    public var blockIDs: [Int32]
    public var cachedBlocks: Int
    public var promptBlocks: Int
    /// Bytes of one block in one layer (K then V).
    public var bytesPerLayerBlock: Int
    /// Where P maps D's KV storage for `ipc` (nil for tcp).
    public var ipc: IPCRegion?

    public init(requestID: String, blockIDs: [Int32], cachedBlocks: Int, promptBlocks: Int, bytesPerLayerBlock: Int,
                ipc: IPCRegion?) {
        self.requestID = requestID
        self.blockIDs = blockIDs
        self.cachedBlocks = cachedBlocks
        self.promptBlocks = promptBlocks
        self.bytesPerLayerBlock = bytesPerLayerBlock
        self.ipc = ipc
    }

    /// The blocks P must send, in order.
    public var blocksToSend: ArraySlice<Int32> { blockIDs[cachedBlocks..<promptBlocks] }

    enum CodingKeys: String, CodingKey {
        case ipc
        case requestID = "request_id"
        case blockIDs = "block_ids"
        case cachedBlocks = "cached_blocks"
        case promptBlocks = "prompt_blocks"
        case bytesPerLayerBlock = "bytes_per_layer_block"
    }
}

/// D's KV storage as a shared-memory file: layer-major, `numBlocks` blocks per layer.
public struct IPCRegion: Codable, Hashable, Sendable {
    /// A path P can open (`/proc/<pid>/fd/<fd>` of D's memfd).
    public var path: String
    /// Distinguishes D instances (a mapping is reused across requests to the same one).
    public var instanceID: String
    public var byteCount: Int
    public var numBlocks: Int
    /// Under which P may write this reservation's blocks (until D revokes it).
    public var lease: IPCLease

    public init(path: String, instanceID: String, byteCount: Int, numBlocks: Int, lease: IPCLease) {
        self.path = path
        self.instanceID = instanceID
        self.byteCount = byteCount
        self.numBlocks = numBlocks
        self.lease = lease
    }

    enum CodingKeys: String, CodingKey {
        case path, lease
        case instanceID = "instance_id"
        case byteCount = "byte_count"
        case numBlocks = "num_blocks"
    }
}

/// One reservation's slot in D's lease file: P copies into D's blocks only while holding the
/// slot's lock and while the slot still holds `generation` (D writes 0 to take the blocks back).
public struct IPCLease: Codable, Hashable, Sendable {
    /// A path P can open (`/proc/<pid>/fd/<fd>` of D's lease file).
    public var path: String
    public var slot: Int
    public var generation: UInt64

    public init(path: String, slot: Int, generation: UInt64) {
        self.path = path
        self.slot = slot
        self.generation = generation
    }
}

/// P → D after every block is acknowledged: the first generated token, with its logprobs
/// when the request asked for them, and the prompt's logprobs when it asked for those (echo
/// with logprobs: P computed every prompt position).
public struct PDFirstToken: Codable, Hashable, Sendable {
    public struct Alternative: Codable, Hashable, Sendable {
        public var token: Int32
        public var logprob: Float
        public init(token: Int32, logprob: Float) {
            self.token = token
            self.logprob = logprob
        }
    }

    /// One prompt token's logprob and its top alternatives.
    public struct PromptLogprob: Codable, Hashable, Sendable {
        public var token: Int32
        public var logprob: Float
        public var topLogprobs: [Alternative]
        public init(token: Int32, logprob: Float, topLogprobs: [Alternative]) {
            self.token = token
            self.logprob = logprob
            self.topLogprobs = topLogprobs
        }

        enum CodingKeys: String, CodingKey {
            case token, logprob
            case topLogprobs = "top_logprobs"
        }
    }

    public var requestID: String
    public var token: Int32
    public var logprob: Float?
    public var topLogprobs: [Alternative]
    /// One entry per prompt token (the first, which nothing predicts, is null).
    public var promptLogprobs: [PromptLogprob?]?

    public init(requestID: String, token: Int32, logprob: Float?, topLogprobs: [Alternative],
                promptLogprobs: [PromptLogprob?]? = nil) {
        self.requestID = requestID
        self.token = token
        self.logprob = logprob
        self.topLogprobs = topLogprobs
        self.promptLogprobs = promptLogprobs
    }

    enum CodingKeys: String, CodingKey {
        case token, logprob
        case requestID = "request_id"
        case topLogprobs = "top_logprobs"
        case promptLogprobs = "prompt_logprobs"
    }
}

/// Either side: the request cannot go on (refusal, abort, checksum or deadline failure).
public struct PDFailure: Codable, Hashable, Sendable, Error, CustomStringConvertible {
    public var requestID: String
    public var message: String

    public init(requestID: String, message: String) {
        self.requestID = requestID
        self.message = message
    }

    public var description: String { message }

    enum CodingKeys: String, CodingKey {
        case message
        case requestID = "request_id"
    }
}

/// P → D, first message on a cache-queue (tcp data) connection: which reservation it writes.
public struct PDAttach: Codable, Hashable, Sendable {
    public var requestID: String
    public init(requestID: String) { self.requestID = requestID }
    enum CodingKeys: String, CodingKey { case requestID = "request_id" }
}

/// D → P: a KV write is in D's blocks and its checksum verified.
public struct PDAck: Codable, Hashable, Sendable {
    public var layer: Int
    public var blocks: Int
    public init(layer: Int, blocks: Int) {
        self.layer = layer
        self.blocks = blocks
    }
}

/// D → P: the first token is in; D decodes from here. P may free its blocks.
public struct PDDone: Codable, Hashable, Sendable {
    public var requestID: String
    public init(requestID: String) { self.requestID = requestID }
    enum CodingKeys: String, CodingKey { case requestID = "request_id" }
}

/// P → D on the PD-comm connection, after the reservation: `prefillWaiting` while the request
/// waits in P's queue, `prefillStarted` once P's engine runs its first prefill step, then
/// `prefillRunning` whenever P has sent nothing else for a while (each well within the transfer
/// timeout, so D knows P is alive): D's deadline bounds P's silence, not the queue or the
/// prefill.
public struct PDPrefillProgress: Codable, Hashable, Sendable {
    public var requestID: String
    public init(requestID: String) { self.requestID = requestID }
    enum CodingKeys: String, CodingKey { case requestID = "request_id" }
}
