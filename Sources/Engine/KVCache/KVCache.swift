import CKernels
import Foundation

/// Storage for the keys and values of every layer, in fixed-size blocks addressed through
/// per-sequence block tables (see `KVCacheLayout` for the byte layout). Which blocks belong
/// to which sequence is decided by the caller (the block manager); the cache only stores.
/// Values are float32, or IEEE half (`.float16`: rounded to nearest even when written).
public final class KVCache {
    public let layout: KVCacheLayout
    let storage: UnsafeMutableRawPointer
    /// Set when the storage is a shared-memory file another process can map (PD `ipc`).
    public let sharedMemory: SharedKVMemory?

    /// Largest block and head sizes the attention kernel accepts (defined in tk_attention.h).
    public static let maxBlockSize = Int(TK_ATTENTION_MAX_BLOCK_SIZE)
    public static let maxHeadDim = Int(TK_ATTENTION_MAX_HEAD_DIM)

    public init(layout: KVCacheLayout, shared: Bool = false) throws {
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
        if shared {
            let memory = try SharedKVMemory(byteCount: count * layout.dataType.byteCount)
            sharedMemory = memory
            storage = memory.base
        } else {
            sharedMemory = nil
            storage = UnsafeMutableRawPointer.allocate(byteCount: count * layout.dataType.byteCount, alignment: 64)
        }
        switch layout.dataType {
        case .float32: storage.bindMemory(to: Float.self, capacity: count)
        case .float16: storage.bindMemory(to: UInt16.self, capacity: count)
        }
        // Not zeroed: a position is always written before it is read, and pages never
        // touched cost no memory.
    }

    deinit { if sharedMemory == nil { storage.deallocate() } }

    /// Start of `layer`'s blocks.
    func layerBase(_ layer: Int) -> UnsafeMutableRawPointer {
        storage + layer * layout.numBlocks * layout.bytesPerLayerBlock
    }

    /// The K-then-V bytes of one block in one layer (`bytesPerLayerBlock` bytes), e.g. to send
    /// to or receive from another instance.
    public func blockBytes(layer: Int, block: Int) -> UnsafeMutableRawBufferPointer {
        precondition((0..<layout.layers).contains(layer) && (0..<layout.numBlocks).contains(block))
        let start = layerBase(layer) + block * layout.bytesPerLayerBlock
        return UnsafeMutableRawBufferPointer(start: start, count: layout.bytesPerLayerBlock)
    }

    /// Start of `layer`'s block holding `position`, and the slot within it.
    private func locate(_ layer: Int, _ position: Int, _ blockTable: [Int32]) -> (block: UnsafeMutableRawPointer, slot: Int) {
        let block = Int(blockTable[position / layout.blockSize])
        precondition((0..<layout.numBlocks).contains(block), "block id \(block) outside the cache")
        return (layerBase(layer) + block * layout.bytesPerLayerBlock, position % layout.blockSize)
    }

    /// Stores the keys and values (`kvHeads × headDim` floats each, head-major) of the token at
    /// `position` of the sequence owning `blockTable`.
    public func write(layer: Int, position: Int, blockTable: [Int32],
                      key: UnsafePointer<Float>, value: UnsafePointer<Float>) {
        let (block, slot) = locate(layer, position, blockTable)
        switch layout.dataType {
        case .float32:
            scatter(block.assumingMemoryBound(to: Float.self), slot, key, value) { $0 }
        case .float16:
            scatter(block.assumingMemoryBound(to: UInt16.self), slot, key, value) { tk_fp32_to_fp16($0) }
        }
    }

    /// Reads back what `write` stored (as float).
    public func read(layer: Int, position: Int, blockTable: [Int32],
                     key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>) {
        let (block, slot) = locate(layer, position, blockTable)
        switch layout.dataType {
        case .float32:
            gather(block.assumingMemoryBound(to: Float.self), slot, key, value) { $0 }
        case .float16:
            gather(block.assumingMemoryBound(to: UInt16.self), slot, key, value) { tk_fp16_to_fp32($0) }
        }
    }

    /// Keys go to `[head][dim][slot]`, values to `[head][slot][dim]` after all keys.
    @inline(__always)
    private func scatter<Element>(_ block: UnsafeMutablePointer<Element>, _ slot: Int, _ key: UnsafePointer<Float>,
                                  _ value: UnsafePointer<Float>, _ convert: (Float) -> Element) {
        let hd = layout.headDim, bs = layout.blockSize, stride = layout.floatsPerHeadBlock
        let values = block + layout.kvHeads * stride
        for h in 0..<layout.kvHeads {
            let k = block + h * stride + slot
            let v = values + h * stride + slot * hd
            for d in 0..<hd {
                k[d * bs] = convert(key[h * hd + d])
                v[d] = convert(value[h * hd + d])
            }
        }
    }

    @inline(__always)
    private func gather<Element>(_ block: UnsafeMutablePointer<Element>, _ slot: Int, _ key: UnsafeMutablePointer<Float>,
                                 _ value: UnsafeMutablePointer<Float>, _ convert: (Element) -> Float) {
        let hd = layout.headDim, bs = layout.blockSize, stride = layout.floatsPerHeadBlock
        let values = block + layout.kvHeads * stride
        for h in 0..<layout.kvHeads {
            let k = block + h * stride + slot
            let v = values + h * stride + slot * hd
            for d in 0..<hd {
                key[h * hd + d] = convert(k[d * bs])
                value[h * hd + d] = convert(v[d])
            }
        }
    }
}
