/// Hands out the KV cache's blocks to sequences: reference counts, and a prefix cache of full
/// blocks keyed by a chain hash of their whole token prefix (`hash(parent hash, block tokens)`),
/// shared between sequences whose prompts start alike.
///
/// Blocks no one holds wait in one least-recently-freed queue, cached or not: allocation takes
/// the oldest, dropping its cache entry (least-recently-used eviction), and a prefix-cache hit
/// takes a cached block back out of the queue. So `freeCount` includes evictable cached blocks.
struct BlockManager {
    let numBlocks: Int
    let blockSize: Int
    let enablePrefixCaching: Bool

    private var referenceCount: [Int32]
    /// The chain hash and tokens of each cached (full, registered) block.
    private var cached: [CachedBlock?]
    private var blockForHash: [UInt64: Int32] = [:]
    private var freeQueue: BlockQueue

    private struct CachedBlock {
        var hash: UInt64
        var tokens: [Int32]
    }

    init(numBlocks: Int, blockSize: Int, enablePrefixCaching: Bool) {
        self.numBlocks = numBlocks
        self.blockSize = blockSize
        self.enablePrefixCaching = enablePrefixCaching
        referenceCount = Array(repeating: 0, count: numBlocks)
        cached = Array(repeating: nil, count: numBlocks)
        freeQueue = BlockQueue(count: numBlocks)
    }

    /// Blocks that can be allocated now, evictable cached blocks included.
    var freeCount: Int { freeQueue.count }
    var usedCount: Int { numBlocks - freeCount }
    /// Blocks holding a cached prefix (held or not).
    var cachedCount: Int { blockForHash.count }

    func blocksNeeded(forTokens tokens: Int) -> Int { (tokens + blockSize - 1) / blockSize }

    /// A fresh block for one holder, or nil when none is free. Evicts the least recently
    /// freed cached block if that is the one taken.
    mutating func allocate() -> Int32? {
        guard let block = freeQueue.popFirst() else { return nil }
        uncache(block)
        referenceCount[Int(block)] = 1
        return block
    }

    /// Gives back one holder's references, last block first, so that a sequence's tail blocks
    /// (the least likely to be shared) are evicted before its head.
    mutating func release(_ blocks: [Int32]) {
        for block in blocks.reversed() {
            let i = Int(block)
            precondition(referenceCount[i] > 0, "block \(block) released more often than taken")
            referenceCount[i] -= 1
            if referenceCount[i] == 0 { freeQueue.append(block) }
        }
    }

    /// The cached blocks holding the longest run of full blocks at the start of `tokens`
    /// (at most `maxBlocks`), each taken for one more holder.
    mutating func takeCachedPrefix(of tokens: [Int32], maxBlocks: Int) -> [Int32] {
        guard enablePrefixCaching else { return [] }
        var blocks: [Int32] = []
        var parent: UInt64 = 0
        while blocks.count < maxBlocks {
            let start = blocks.count * blockSize
            let chunk = tokens[start..<start + blockSize]
            let hash = Self.chainHash(parent: parent, tokens: chunk)
            guard let block = blockForHash[hash], cached[Int(block)]?.tokens.elementsEqual(chunk) == true else { break }
            if referenceCount[Int(block)] == 0 { freeQueue.remove(block) }
            referenceCount[Int(block)] += 1
            blocks.append(block)
            parent = hash
        }
        return blocks
    }

    /// Enters `block`, holding `tokens` (a full block) after the prefix whose last block hash
    /// is `parent` (0 for the first block), into the prefix cache. Returns its hash for the
    /// next block's chain. A prefix already cached in another block is left as it is.
    @discardableResult
    mutating func register(_ block: Int32, tokens: ArraySlice<Int32>, parent: UInt64) -> UInt64 {
        precondition(tokens.count == blockSize, "only full blocks are cached")
        let hash = Self.chainHash(parent: parent, tokens: tokens)
        guard enablePrefixCaching, cached[Int(block)] == nil, blockForHash[hash] == nil else { return hash }
        cached[Int(block)] = CachedBlock(hash: hash, tokens: Array(tokens))
        blockForHash[hash] = block
        return hash
    }

    /// Drops every cached prefix block no one holds. Returns how many were dropped.
    @discardableResult
    mutating func flushUnused() -> Int {
        var dropped = 0
        for block in 0..<Int32(numBlocks) where referenceCount[Int(block)] == 0 && cached[Int(block)] != nil {
            uncache(block)
            dropped += 1
        }
        return dropped
    }

    private mutating func uncache(_ block: Int32) {
        guard let entry = cached[Int(block)] else { return }
        blockForHash[entry.hash] = nil
        cached[Int(block)] = nil
    }

    /// FNV-1a over the parent hash and the block's tokens: stable across processes (unlike
    /// `Hasher`), so blocks could later be matched between instances.
    static func chainHash(parent: UInt64, tokens: ArraySlice<Int32>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ value: UInt64) {
            var v = value
            for _ in 0..<8 {
                hash = (hash ^ (v & 0xff)) &* 0x100_0000_01b3
                v >>= 8
            }
        }
        mix(parent)
        for token in tokens { mix(UInt64(UInt32(bitPattern: token))) }
        return hash
    }
}

/// The free blocks in the order they were freed: a doubly linked list over block ids, so
/// taking the oldest, appending, and removing a block from the middle are all O(1).
private struct BlockQueue {
    private static let none: Int32 = -1
    private var previous: [Int32]
    private var next: [Int32]
    private var isQueued: [Bool]
    private var head: Int32
    private var tail: Int32
    private(set) var count: Int

    /// All blocks, in id order.
    init(count: Int) {
        previous = (0..<Int32(count)).map { $0 - 1 }
        next = (0..<Int32(count)).map { $0 + 1 < count ? $0 + 1 : Self.none }
        isQueued = Array(repeating: true, count: count)
        head = count > 0 ? 0 : Self.none
        tail = Int32(count) - 1
        self.count = count
    }

    mutating func popFirst() -> Int32? {
        guard head != Self.none else { return nil }
        let block = head
        remove(block)
        return block
    }

    mutating func append(_ block: Int32) {
        let i = Int(block)
        precondition(!isQueued[i], "block \(block) freed twice")
        previous[i] = tail
        next[i] = Self.none
        if tail != Self.none { next[Int(tail)] = block } else { head = block }
        tail = block
        isQueued[i] = true
        count += 1
    }

    mutating func remove(_ block: Int32) {
        let i = Int(block)
        precondition(isQueued[i], "block \(block) is not free")
        if previous[i] != Self.none { next[Int(previous[i])] = next[i] } else { head = next[i] }
        if next[i] != Self.none { previous[Int(next[i])] = previous[i] } else { tail = previous[i] }
        isQueued[i] = false
        count -= 1
    }
}
