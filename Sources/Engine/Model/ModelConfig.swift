import GGUF

/// The shape and hyper-parameters of a Llama-family model, read from GGUF metadata
/// (`<arch>.block_count`, `<arch>.attention.head_count`, …) and the embedding tensor.
public struct ModelConfig: Sendable, Equatable {
    public var architecture: ModelArchitecture
    public var layerCount: Int
    public var hiddenSize: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var ffnSize: Int
    public var vocabSize: Int
    public var contextLength: Int
    public var ropeBase: Float
    /// Linear RoPE scaling: positions are multiplied by this (1 / `rope.scaling.factor`).
    public var ropeFreqScale: Float
    public var rmsEpsilon: Float

    public var qSize: Int { headCount * headDim }
    public var kvSize: Int { kvHeadCount * headDim }

    public init(
        architecture: ModelArchitecture, layerCount: Int, hiddenSize: Int, headCount: Int,
        kvHeadCount: Int, headDim: Int, ffnSize: Int, vocabSize: Int, contextLength: Int,
        ropeBase: Float, ropeFreqScale: Float = 1, rmsEpsilon: Float
    ) {
        self.architecture = architecture
        self.layerCount = layerCount
        self.hiddenSize = hiddenSize
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim
        self.ffnSize = ffnSize
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.ropeBase = ropeBase
        self.ropeFreqScale = ropeFreqScale
        self.rmsEpsilon = rmsEpsilon
    }

    public init(gguf: GGUFFile) throws {
        let archName = try gguf.requiredString("general.architecture")
        guard let arch = ModelArchitecture(rawValue: archName) else {
            throw EngineError.unsupportedArchitecture(archName)
        }
        let p = arch.rawValue
        architecture = arch
        layerCount = try gguf.requiredInt("\(p).block_count")
        hiddenSize = try gguf.requiredInt("\(p).embedding_length")
        ffnSize = try gguf.requiredInt("\(p).feed_forward_length")
        headCount = try gguf.requiredInt("\(p).attention.head_count")
        kvHeadCount = try gguf.optionalInt("\(p).attention.head_count_kv") ?? headCount
        contextLength = try gguf.optionalInt("\(p).context_length") ?? 2048
        ropeBase = try gguf.optionalFloat("\(p).rope.freq_base") ?? 10000
        rmsEpsilon = try gguf.optionalFloat("\(p).attention.layer_norm_rms_epsilon") ?? 1e-5

        guard headCount > 0, kvHeadCount > 0, headCount % kvHeadCount == 0 else {
            throw EngineError.invalidMetadata(
                key: "\(p).attention.head_count_kv",
                reason: "\(kvHeadCount) KV heads do not divide \(headCount) heads")
        }
        headDim = try gguf.optionalInt("\(p).attention.key_length") ?? hiddenSize / headCount
        if let valueLength = try gguf.optionalInt("\(p).attention.value_length"), valueLength != headDim {
            throw EngineError.invalidMetadata(
                key: "\(p).attention.value_length",
                reason: "value head size \(valueLength) differs from key head size \(headDim)")
        }
        if let ropeDims = try gguf.optionalInt("\(p).rope.dimension_count"), ropeDims != headDim {
            throw EngineError.invalidMetadata(
                key: "\(p).rope.dimension_count",
                reason: "partial rotary embeddings (\(ropeDims) of \(headDim) dimensions) are not supported")
        }
        ropeFreqScale = 1
        let scalingType = try gguf.optionalString("\(p).rope.scaling.type") ?? "none"
        switch scalingType {
        case "none":
            break
        case "linear":
            let factor = try gguf.optionalFloat("\(p).rope.scaling.factor") ?? 1
            guard factor > 0 else {
                throw EngineError.invalidMetadata(key: "\(p).rope.scaling.factor", reason: "must be positive")
            }
            ropeFreqScale = 1 / factor
        default:
            throw EngineError.invalidMetadata(
                key: "\(p).rope.scaling.type", reason: "'\(scalingType)' scaling is not supported (none, linear)")
        }

        guard gguf.hasTensor(named: "token_embd.weight") else {
            throw EngineError.missingTensor("token_embd.weight")
        }
        let embedding = try gguf.tensor(named: "token_embd.weight")
        vocabSize = embedding.shape.count == 2 ? embedding.shape[1] : 0
        guard embedding.shape.count == 2, embedding.shape[0] == hiddenSize else {
            throw EngineError.tensorShapeMismatch(
                name: "token_embd.weight", expected: [hiddenSize, vocabSize], found: embedding.shape)
        }
    }
}
