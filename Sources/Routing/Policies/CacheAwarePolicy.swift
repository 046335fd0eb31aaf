import Synchronization

/// Prefix affinity: a prompt goes where its longest prefix was sent before, so the worker's
/// prefix cache holds its KV. The router has no tokenizer, so blocks are `cacheBlockChars`
/// characters of the prompt text hashed in a chain (each hash covers the whole prefix up to its
/// block), the text counterpart of the engine's token-block hashes. When the load is imbalanced
/// (max - min > abs threshold and max > rel threshold × min), or no worker holds enough of the
/// prompt (below `cacheThreshold`), the least busy worker wins instead.
public final class CacheAwarePolicy: SelectionPolicy {
    private struct WorkerBlocks {
        var hashes: Set<Int> = []
        /// Insertion order, for forgetting the oldest beyond the bound.
        var order: [Int] = []
        var head = 0
    }

    private let settings: PolicySettings
    private let blocks = Mutex<[String: WorkerBlocks]>([:])

    public init(settings: PolicySettings) {
        self.settings = settings
    }

    public var needsPromptText: Bool { true }

    public func choose(among candidates: [WorkerSnapshot], for request: RoutingRequest) -> WorkerSnapshot {
        let hashes = Self.prefixHashes(request.promptText, blockChars: settings.cacheBlockChars)
        let loads = candidates.map(\.busyness)
        let leastBusy = candidates[loads.indices.min { loads[$0] < loads[$1] }!]
        let (minLoad, maxLoad) = (loads.min()!, loads.max()!)
        let imbalanced = maxLoad - minLoad > settings.balanceAbsThreshold
            && Double(maxLoad) > settings.balanceRelThreshold * Double(minLoad)
        let chosen: WorkerSnapshot = blocks.withLock { blocks in
            var chosen = leastBusy
            if !imbalanced, !hashes.isEmpty {
                var best: (worker: WorkerSnapshot, matched: Int)?
                for candidate in candidates {
                    let held = blocks[candidate.url]?.hashes ?? []
                    var matched = 0
                    while matched < hashes.count && held.contains(hashes[matched]) { matched += 1 }
                    if matched > (best?.matched ?? 0) || (matched == best?.matched && candidate.busyness < best!.worker.busyness) {
                        best = (candidate, matched)
                    }
                }
                if let best, Double(best.matched) >= settings.cacheThreshold * Double(hashes.count) { chosen = best.worker }
            }
            var entry = blocks[chosen.url] ?? WorkerBlocks()
            for hash in hashes where entry.hashes.insert(hash).inserted {
                entry.order.append(hash)
            }
            while entry.hashes.count > settings.maxBlocksPerWorker {
                entry.hashes.remove(entry.order[entry.head])
                entry.head += 1
            }
            if entry.head > settings.maxBlocksPerWorker {
                entry.order.removeFirst(entry.head)
                entry.head = 0
            }
            blocks[chosen.url] = entry
            return chosen
        }
        return chosen
    }

    /// Chained hashes of the prompt's full blocks and its last partial block.
    public static func prefixHashes(_ text: String, blockChars: Int) -> [Int] {
        let bytes = Array(text.utf8)
        var hashes: [Int] = []
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var index = 0
        while index < bytes.count {
            let end = min(index + blockChars, bytes.count)
            for byte in bytes[index..<end] {
                hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
            }
            hashes.append(Int(bitPattern: UInt(hash)))
            index = end
        }
        return hashes
    }
}
