/// GPT-2-style BPE over byte-level symbols: a word starts as one token per byte and the
/// adjacent pair with the best (lowest) merge rank is merged until no ranked pair remains.
struct ByteLevelBPE: Sendable {
    private struct Merge: Sendable {
        var rank: Int32
        var result: Int32
    }

    /// The token of each single byte (-1: the vocabulary lacks it).
    private let byteTokens: [Int32]
    /// (left id << 32 | right id) -> rank and merged id.
    private let merges: [UInt64: Merge]
    private let unknownTokenID: Int32?

    init(tokenIDsByBytes: [[UInt8]: Int32], pieces: [String], mergeList: [String], unknownTokenID: Int32?) throws {
        var byteTokens = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            if let id = tokenIDsByBytes[[UInt8(byte)]] { byteTokens[byte] = id }
        }
        var idByPiece: [String: Int32] = [:]
        idByPiece.reserveCapacity(pieces.count)
        for (id, piece) in pieces.enumerated() where idByPiece[piece] == nil { idByPiece[piece] = Int32(id) }
        var merges: [UInt64: Merge] = [:]
        merges.reserveCapacity(mergeList.count)
        for (rank, line) in mergeList.enumerated() {
            guard let space = line.firstIndex(of: " ", after: line.startIndex) else {
                throw TokenizerError.inconsistentVocabulary("merge \(rank) '\(line)' is not two pieces separated by a space")
            }
            let left = String(line[..<space]), right = String(line[line.index(after: space)...])
            // Merges whose parts or result are not tokens can never apply; llama.cpp skips them too.
            guard let l = idByPiece[left], let r = idByPiece[right], let m = idByPiece[left + right] else { continue }
            let key = UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))
            if merges[key] == nil { merges[key] = Merge(rank: Int32(rank), result: m) }
        }
        self.byteTokens = byteTokens
        self.merges = merges
        self.unknownTokenID = unknownTokenID
    }

    private func merge(_ left: Int32, _ right: Int32) -> Merge? {
        merges[UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))]
    }

    /// Appends the tokens of one pre-tokenized word (its UTF-8 bytes) to `output`.
    func encode(word: some Collection<UInt8>, into output: inout [Int32]) {
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        for byte in word {
            let id = byteTokens[Int(byte)]
            if id >= 0 { symbols.append(id) } else if let unk = unknownTokenID { symbols.append(unk) }
        }
        if symbols.count < 2 {
            output.append(contentsOf: symbols)
            return
        }
        // Doubly linked symbols; a min-heap of candidate pairs (rank, left position) with
        // stale entries skipped when popped (their symbols changed since).
        var next = Array(1...symbols.count).map(Int32.init)
        var prev = Array(-1..<(symbols.count - 1)).map(Int32.init)
        next[symbols.count - 1] = -1
        var alive = [Bool](repeating: true, count: symbols.count)
        var heap = PairHeap()
        for i in 0..<(symbols.count - 1) {
            if let m = merge(symbols[i], symbols[i + 1]) {
                heap.push(.init(rank: m.rank, left: Int32(i), leftID: symbols[i], rightID: symbols[i + 1]))
            }
        }
        while let candidate = heap.pop() {
            let left = Int(candidate.left)
            guard alive[left], symbols[left] == candidate.leftID, next[left] >= 0 else { continue }
            let right = Int(next[left])
            guard symbols[right] == candidate.rightID, let m = merge(candidate.leftID, candidate.rightID) else { continue }
            symbols[left] = m.result
            alive[right] = false
            next[left] = next[right]
            if next[right] >= 0 { prev[Int(next[right])] = Int32(left) }
            if prev[left] >= 0 {
                let p = Int(prev[left])
                if let pm = merge(symbols[p], symbols[left]) {
                    heap.push(.init(rank: pm.rank, left: Int32(p), leftID: symbols[p], rightID: symbols[left]))
                }
            }
            if next[left] >= 0 {
                let n = Int(next[left])
                if let nm = merge(symbols[left], symbols[n]) {
                    heap.push(.init(rank: nm.rank, left: Int32(left), leftID: symbols[left], rightID: symbols[n]))
                }
            }
        }
        var i = 0
        while i >= 0 {
            output.append(symbols[i])
            i = Int(next[i])
        }
    }
}

/// A binary min-heap of merge candidates ordered by rank, then by position (leftmost first).
struct PairHeap {
    struct Entry {
        var rank: Int32
        var left: Int32
        var leftID: Int32
        var rightID: Int32
        func precedes(_ other: Entry) -> Bool {
            rank != other.rank ? rank < other.rank : left < other.left
        }
    }

    private var entries: [Entry] = []

    mutating func push(_ entry: Entry) {
        entries.append(entry)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].precedes(entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let top = entries.first else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var parent = 0
            while true {
                let l = 2 * parent + 1, r = l + 1
                var best = parent
                if l < entries.count && entries[l].precedes(entries[best]) { best = l }
                if r < entries.count && entries[r].precedes(entries[best]) { best = r }
                if best == parent { break }
                entries.swapAt(parent, best)
                parent = best
            }
        }
        return top
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
