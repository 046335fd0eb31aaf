import CKernels
import Foundation

/// Storage for the keys and values of every layer, in fixed-size blocks addressed through
/// per-sequence block tables (see `KVCacheLayout` for the byte layout). Which blocks belong
/// to which sequence is decided by the caller (the block manager); the cache only stores.
public final class KVCache {
    public let layout: KVCacheLayout
    let storage: UnsafeMutablePointer<Float>

    /// Largest block and head sizes the attention kernel accepts (defined in tk_attention.h).
    public static let maxBlockSize = Int(TK_ATTENTION_MAX_BLOCK_SIZE)
    public static let maxHeadDim = Int(TK_ATTENTION_MAX_HEAD_DIM)

    public init(layout: KVCacheLayout) throws {
        guard layout.layers > 0, layout.kvHeads > 0, layout.headDim > 0, layout.numBlocks > 0 else {
            throw EngineError.invalidCacheLayout("every dimension must be positive (\(layout))")
        }
        guard (1...Self.maxBlockSize).contains(layout.blockSize) else {
            throw EngineError.invalidCacheLayout("block size \(layout.blockSize) is outside 1...\(Self.maxBlockSize)")
        }
        guard layout.headDim <= Self.maxHeadDim else {
            throw EngineError.invalidCacheLayout("head size \(layout.headDim) exceeds \(Self.maxHeadDim)")
        }
        self.layout = layout
        let count = layout.floatsPerLayerBlock * layout.numBlocks * layout.layers
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
        storage = raw.bindMemory(to: Float.self, capacity: count)
        // Not zeroed: a position is always written before it is read, and pages never
        // touched cost no memory.
    }

    deinit { UnsafeMutableRawPointer(storage).deallocate() }

    /// Start of `layer`'s blocks.
    func layerBase(_ layer: Int) -> UnsafeMutablePointer<Float> {
        storage + layer * layout.numBlocks * layout.floatsPerLayerBlock
    }

    /// The K-then-V bytes of one block in one layer (`bytesPerLayerBlock` bytes), e.g. to send
    /// to or receive from another instance.
    public func blockBytes(layer: Int, block: Int) -> UnsafeMutableRawBufferPointer {
        precondition((0..<layout.layers).contains(layer) && (0..<layout.numBlocks).contains(block))
        let start = layerBase(layer) + block * layout.floatsPerLayerBlock
        return UnsafeMutableRawBufferPointer(start: start, count: layout.bytesPerLayerBlock)
    }

    /// Start of `layer`'s block holding `position`, and the slot within it.
    private func locate(_ layer: Int, _ position: Int, _ blockTable: [Int32]) -> (block: UnsafeMutablePointer<Float>, slot: Int) {
        let block = Int(blockTable[position / layout.blockSize])
        precondition((0..<layout.numBlocks).contains(block), "block id \(block) outside the cache")
        return (layerBase(layer) + block * layout.floatsPerLayerBlock, position % layout.blockSize)
    }

    /// Stores the keys and values (`kvHeads × headDim` floats each, head-major) of the token at
    /// `position` of the sequence owning `blockTable`.
    public func write(layer: Int, position: Int, blockTable: [Int32],
                      key: UnsafePointer<Float>, value: UnsafePointer<Float>) {
        let (block, slot) = locate(layer, position, blockTable)
        let hd = layout.headDim, bs = layout.blockSize, stride = layout.floatsPerHeadBlock
        let values = block + layout.kvHeads * stride
        for h in 0..<layout.kvHeads {
            let k = block + h * stride + slot
            for d in 0..<hd { k[d * bs] = key[h * hd + d] }
            (values + h * stride + slot * hd).update(from: value + h * hd, count: hd)
        }
    }

    /// Reads back what `write` stored.
    public func read(layer: Int, position: Int, blockTable: [Int32],
                     key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>) {
        let (block, slot) = locate(layer, position, blockTable)
        let hd = layout.headDim, bs = layout.blockSize, stride = layout.floatsPerHeadBlock
        let values = block + layout.kvHeads * stride
        for h in 0..<layout.kvHeads {
            let k = block + h * stride + slot
            for d in 0..<hd { key[h * hd + d] = k[d * bs] }
            (value + h * hd).update(from: values + h * stride + slot * hd, count: hd)
        }
    }
}
