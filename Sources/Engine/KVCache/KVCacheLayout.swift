/// The geometry of a paged KV cache: what a prefill and a decode instance must agree on
/// before KV blocks move between them (the PD layout handshake).
///
/// Storage is float32 or IEEE half (`dataType`), ordered by layer, then block; one (layer,
/// block) pair is one contiguous span of `floatsPerLayerBlock` values, so a block can be sent
/// layer by layer as one copy:
/// - first the keys, `[kvHead][headDim][slot]` (transposed, so attention scores a whole block
///   with one vector per dimension),
/// - then the values, `[kvHead][slot][headDim]`.
/// The token at position p of a sequence lives in block `blockTable[p / blockSize]`, slot
/// `p % blockSize`.
public struct KVCacheLayout: Equatable, Hashable, Sendable, Codable, CustomStringConvertible {
    public enum DataType: String, Sendable, Codable {
        case float32
        /// IEEE half: half the memory and transfer bytes; attention converts on the fly.
        case float16
        public var byteCount: Int {
            switch self {
            case .float32: 4
            case .float16: 2
            }
        }
    }

    public let layers: Int
    public let kvHeads: Int
    public let headDim: Int
    public let blockSize: Int
    public let numBlocks: Int
    public let dataType: DataType

    public init(layers: Int, kvHeads: Int, headDim: Int, blockSize: Int = 16, numBlocks: Int,
                dataType: DataType = .float32) {
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.blockSize = blockSize
        self.numBlocks = numBlocks
        self.dataType = dataType
    }

    public init(config: ModelConfig, blockSize: Int = 16, numBlocks: Int, dataType: DataType = .float32) {
        self.init(layers: config.layerCount, kvHeads: config.kvHeadCount, headDim: config.headDim,
                  blockSize: blockSize, numBlocks: numBlocks, dataType: dataType)
    }

    /// Values (of `dataType`) of one head's keys (or values) in one block of one layer.
    public var floatsPerHeadBlock: Int { blockSize * headDim }
    /// Values of one block in one layer: K and V of every KV head.
    public var floatsPerLayerBlock: Int { 2 * kvHeads * floatsPerHeadBlock }
    public var bytesPerLayerBlock: Int { floatsPerLayerBlock * dataType.byteCount }
    /// Bytes one block takes over all layers.
    public var bytesPerBlock: Int { bytesPerLayerBlock * layers }
    public var totalBytes: Int { bytesPerBlock * numBlocks }
    /// Tokens the whole cache can hold.
    public var tokenCapacity: Int { blockSize * numBlocks }

    /// Blocks needed to hold `tokens` positions.
    public func blocksNeeded(forTokens tokens: Int) -> Int { (tokens + blockSize - 1) / blockSize }

    public var description: String {
        "\(layers) layers × \(numBlocks) blocks × \(blockSize) tokens × \(kvHeads) KV heads × \(headDim) dims, \(dataType.rawValue)"
    }
}
