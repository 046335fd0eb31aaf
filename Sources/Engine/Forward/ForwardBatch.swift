/// One sequence's share of a forward step: a chunk of consecutive tokens starting at
/// `startPosition` (a prompt chunk when prefilling, one token when decoding), with the block
/// table that holds its KV cache. Positions before `startPosition` must already be in the cache.
public struct SequenceChunk: Sendable, Equatable {
    public enum LogitsWanted: Sendable, Equatable {
        case none
        case lastToken
        case allTokens
    }

    public var tokens: [Int32]
    public var startPosition: Int
    /// Block ids covering at least positions 0 ..< startPosition + tokens.count.
    public var blockTable: [Int32]
    public var logits: LogitsWanted

    public init(tokens: [Int32], startPosition: Int, blockTable: [Int32], logits: LogitsWanted = .lastToken) {
        self.tokens = tokens
        self.startPosition = startPosition
        self.blockTable = blockTable
        self.logits = logits
    }
}

/// All sequences of one forward step. Their tokens go through the linear layers together.
public struct ForwardBatch: Sendable, Equatable {
    public var sequences: [SequenceChunk]

    public init(_ sequences: [SequenceChunk]) { self.sequences = sequences }

    public var tokenCount: Int { sequences.reduce(0) { $0 + $1.tokens.count } }
}

/// The logits a forward step produced: one row of `vocabSize` floats per requested position,
/// in batch order (sequence by sequence, positions ascending).
public struct Logits: Sendable {
    public struct Row: Sendable, Equatable {
        public let sequence: Int
        public let position: Int
    }

    public let vocabSize: Int
    public let rows: [Row]
    public internal(set) var values: [Float]

    /// Logits of row `index`.
    public subscript(index: Int) -> ArraySlice<Float> {
        values[index * vocabSize ..< (index + 1) * vocabSize]
    }

    /// Logits of the last requested position of sequence `sequence`, if any.
    public func last(ofSequence sequence: Int) -> ArraySlice<Float>? {
        guard let index = rows.lastIndex(where: { $0.sequence == sequence }) else { return nil }
        return self[index]
    }
}
