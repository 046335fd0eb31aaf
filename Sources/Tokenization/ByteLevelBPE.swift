/// GPT-2-style BPE over byte-level symbols: a word starts as one token per byte and the
/// adjacent pair with the best (lowest) merge rank is merged until no ranked pair remains.
struct ByteLevelBPE: Sendable {
    /// The token of each single byte (-1: the vocabulary lacks it).
    private let byteTokens: [Int32]
    private let merges: MergeTable
    private let unknownTokenID: Int32?

    init(tokenIDsByBytes: [[UInt8]: Int32], pieces: [String], mergeList: [String], unknownTokenID: Int32?) throws {
        var byteTokens = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            if let id = tokenIDsByBytes[[UInt8(byte)]] { byteTokens[byte] = id }
        }
        var idByPiece: [String: Int32] = [:]
        idByPiece.reserveCapacity(pieces.count)
        for (id, piece) in pieces.enumerated() where idByPiece[piece] == nil { idByPiece[piece] = Int32(id) }
        var merges = MergeTable(capacityFor: mergeList.count)
        for (rank, line) in mergeList.enumerated() {
            guard let space = line.firstIndex(of: " ", after: line.startIndex) else {
                throw TokenizerError.inconsistentVocabulary("merge \(rank) '\(line)' is not two pieces separated by a space")
            }
            let left = String(line[..<space]), right = String(line[line.index(after: space)...])
            // Merges whose parts or result are not tokens can never apply; llama.cpp skips them too.
            guard let l = idByPiece[left], let r = idByPiece[right], let m = idByPiece[left + right] else { continue }
            merges.insert(l, r, MergeTable.Merge(rank: Int32(rank), result: m))
        }
        self.byteTokens = byteTokens
        self.merges = merges
        self.unknownTokenID = unknownTokenID
    }

    private func merge(_ left: Int32, _ right: Int32) -> MergeTable.Merge? {
        merges.lookup(left, right)
    }

    /// Buffers reused from word to word within one `encode` call.
    struct Scratch {
        var symbols: [Int32] = []
        var next: [Int32] = []
        var prev: [Int32] = []
        var heap = MinHeap<PairCandidate>()
    }

    /// Appends the tokens of one pre-tokenized word (its UTF-8 bytes) to `output`.
    func encode(word: some Collection<UInt8>, into output: inout [Int32], scratch: inout Scratch) {
        scratch.symbols.removeAll(keepingCapacity: true)
        for byte in word {
            let id = byteTokens[Int(byte)]
            if id >= 0 { scratch.symbols.append(id) } else if let unk = unknownTokenID { scratch.symbols.append(unk) }
        }
        let count = scratch.symbols.count
        if count < 2 {
            output.append(contentsOf: scratch.symbols)
            return
        }
        // Doubly linked symbols (a merged-away symbol is marked by id -1); a min-heap of
        // candidate pairs (rank, left position), stale entries skipped when popped.
        scratch.next.removeAll(keepingCapacity: true)
        scratch.prev.removeAll(keepingCapacity: true)
        for i in 0..<count {
            scratch.next.append(i + 1 < count ? Int32(i + 1) : -1)
            scratch.prev.append(Int32(i - 1))
        }
        scratch.heap.removeAll()
        withUnsafeMutableBufferPointers(&scratch) { symbols, next, prev, heap in
            for i in 0..<(count - 1) {
                if let m = merge(symbols[i], symbols[i + 1]) {
                    heap.push(PairCandidate(rank: m.rank, left: Int32(i), leftID: symbols[i], rightID: symbols[i + 1]))
                }
            }
            while let candidate = heap.pop() {
                let left = Int(candidate.left)
                guard symbols[left] == candidate.leftID, next[left] >= 0 else { continue }
                let right = Int(next[left])
                guard symbols[right] == candidate.rightID, let m = merge(candidate.leftID, candidate.rightID) else { continue }
                symbols[left] = m.result
                symbols[right] = -1
                next[left] = next[right]
                if next[right] >= 0 { prev[Int(next[right])] = Int32(left) }
                if prev[left] >= 0 {
                    let p = Int(prev[left])
                    if let pm = merge(symbols[p], symbols[left]) {
                        heap.push(PairCandidate(rank: pm.rank, left: Int32(p), leftID: symbols[p], rightID: symbols[left]))
                    }
                }
                if next[left] >= 0 {
                    let n = Int(next[left])
                    if let nm = merge(symbols[left], symbols[n]) {
                        heap.push(PairCandidate(rank: nm.rank, left: Int32(left), leftID: symbols[left], rightID: symbols[n]))
                    }
                }
            }
        }
        var i = 0
        while i >= 0 {
            output.append(scratch.symbols[i])
            i = Int(scratch.next[i])
        }
    }

    private func withUnsafeMutableBufferPointers(
        _ scratch: inout Scratch,
        _ body: (UnsafeMutableBufferPointer<Int32>, UnsafeMutableBufferPointer<Int32>, UnsafeMutableBufferPointer<Int32>, inout MinHeap<PairCandidate>) -> Void
    ) {
        scratch.symbols.withUnsafeMutableBufferPointer { symbols in
            scratch.next.withUnsafeMutableBufferPointer { next in
                scratch.prev.withUnsafeMutableBufferPointer { prev in
                    body(symbols, next, prev, &scratch.heap)
                }
            }
        }
    }
}

/// A merge candidate: ordered by rank, then by position (leftmost first).
struct PairCandidate: HeapOrdered {
    var rank: Int32
    var left: Int32
    var leftID: Int32
    var rightID: Int32

    func precedes(_ other: PairCandidate) -> Bool {
        rank != other.rank ? rank < other.rank : left < other.left
    }
}

extension String {
    /// The first `character` after `index`. A merge line splits at its first space after the
    /// first character (as llama.cpp reads them), so a piece may itself be a space.
    fileprivate func firstIndex(of character: Character, after index: Index) -> Index? {
        guard index < endIndex else { return nil }
        return self[self.index(after: index)...].firstIndex(of: character)
    }
}
