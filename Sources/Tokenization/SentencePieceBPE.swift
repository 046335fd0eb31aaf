/// SentencePiece-style BPE (llama.cpp's `llm_tokenizer_spm`): the text, spaces escaped as
/// U+2581, starts as one symbol per character; the adjacent pair whose concatenation is the
/// vocabulary piece with the highest score merges first. Characters missing from the
/// vocabulary become their UTF-8 bytes' `<0xNN>` tokens (byte fallback), or the unknown token.
struct SentencePieceBPE: Sendable {
    private let idsByBytes: [[UInt8]: Int32]
    private let scores: [Float]
    private let byteTokens: [Int32]
    private let unknownTokenID: Int32?

    init(idsByBytes: [[UInt8]: Int32], scores: [Float], byteTokens: [Int32], unknownTokenID: Int32?) {
        self.idsByBytes = idsByBytes
        self.scores = scores
        self.byteTokens = byteTokens
        self.unknownTokenID = unknownTokenID
    }

    private struct Symbol {
        var start: Int
        var count: Int
        var prev: Int
        var next: Int
    }

    private struct Bigram: HeapOrdered {
        var score: Float
        var left: Int
        var right: Int
        var count: Int
        /// Highest score first; on a tie the leftmost pair.
        func precedes(_ other: Bigram) -> Bool {
            score != other.score ? score > other.score : left < other.left
        }
    }

    /// Appends the tokens of `text` (already escaped, UTF-8) to `output`.
    func encode(_ text: [UInt8], into output: inout [Int32]) {
        var symbols: [Symbol] = []
        var offset = 0
        while offset < text.count {
            let length = min(Self.utf8Length(leadingByte: text[offset]), text.count - offset)
            symbols.append(Symbol(start: offset, count: length, prev: symbols.count - 1, next: symbols.count + 1))
            offset += length
        }
        guard !symbols.isEmpty else { return }
        symbols[symbols.count - 1].next = -1

        var heap = MinHeap<Bigram>()

        func tryAddBigram(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let start = symbols[left].start, count = symbols[left].count + symbols[right].count
            guard let id = idsByBytes[Array(text[start..<(start + count)])] else { return }
            heap.push(Bigram(score: scores[Int(id)], left: left, right: right, count: count))
        }

        for i in 1..<symbols.count { tryAddBigram(i - 1, i) }
        while let bigram = heap.pop() {
            let left = bigram.left, right = bigram.right
            // Stale: one side already merged into something else.
            guard symbols[left].count > 0, symbols[right].count > 0,
                  symbols[left].count + symbols[right].count == bigram.count else { continue }
            symbols[left].count += symbols[right].count
            symbols[right].count = 0
            symbols[left].next = symbols[right].next
            if symbols[right].next >= 0 { symbols[symbols[right].next].prev = left }
            tryAddBigram(symbols[left].prev, left)
            tryAddBigram(left, symbols[left].next)
        }

        // Merged symbols are tokens; a single character may not be: then its bytes.
        var i = 0
        while i >= 0 {
            let piece = Array(text[symbols[i].start..<(symbols[i].start + symbols[i].count)])
            if let id = idsByBytes[piece] {
                output.append(id)
            } else if piece.allSatisfy({ byteTokens[Int($0)] >= 0 }) {
                for byte in piece { output.append(byteTokens[Int(byte)]) }
            } else if let unk = unknownTokenID {
                output.append(unk)
            }
            i = symbols[i].next
        }
    }

    static func utf8Length(leadingByte byte: UInt8) -> Int {
        switch byte {
        case 0xF0...: 4
        case 0xE0...: 3
        case 0xC0...: 2
        default: 1
        }
    }
}
