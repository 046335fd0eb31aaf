/// Text to token ids and back, for the two tokenizer families GGUF files carry: byte-level
/// BPE (`gpt2`) and SentencePiece BPE (`llama`). Immutable after init, so safe to share.
public final class Tokenizer: Sendable {
    public let model: TokenizerConfiguration.Model
    public let bosToken: Int32?
    public let eosToken: Int32?
    public let unknownToken: Int32?
    public let paddingToken: Int32?
    public let addsBOS: Bool
    public let addsEOS: Bool
    /// Tokens that end a generation: eos and the end-of-turn tokens present in the vocabulary.
    public let endOfGenerationTokens: Set<Int32>

    let pieces: [String]
    let tokenTypes: [Int32]
    /// What each token decodes to, as bytes.
    let pieceBytes: [[UInt8]]
    let idByPiece: [String: Int32]
    let addSpacePrefix: Bool
    let specialTokens: SpecialTokenMatcher
    let encoder: Encoder

    enum Encoder: Sendable {
        case byteLevel(ByteLevelBPE, PreTokenizer, wholeWordIDs: [[UInt8]: Int32])
        case sentencePiece(SentencePieceBPE)
    }

    /// End-of-turn pieces of the common chat formats, recognized when the vocabulary has them.
    static let endOfTurnPieces = [
        "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<|endoftext|>", "<|end_of_text|>",
        "<end_of_turn>", "</s>", "<|END_OF_TURN_TOKEN|>",
    ]

    public init(configuration c: TokenizerConfiguration) throws {
        let count = c.tokens.count
        guard count > 0 else { throw TokenizerError.inconsistentVocabulary("the vocabulary is empty") }
        guard c.tokenTypes.isEmpty || c.tokenTypes.count == count else {
            throw TokenizerError.inconsistentVocabulary("\(c.tokenTypes.count) token types for \(count) tokens")
        }
        guard c.scores.isEmpty || c.scores.count == count else {
            throw TokenizerError.inconsistentVocabulary("\(c.scores.count) scores for \(count) tokens")
        }
        for (name, id) in [("bos", c.bosTokenID), ("eos", c.eosTokenID), ("unknown", c.unknownTokenID), ("padding", c.paddingTokenID)] {
            if let id, id < 0 || Int(id) >= count {
                throw TokenizerError.inconsistentVocabulary("the \(name) token id \(id) is outside the vocabulary of \(count) tokens")
            }
        }
        let types = c.tokenTypes.isEmpty ? [Int32](repeating: TokenType.normal, count: count) : c.tokenTypes
        model = c.model
        pieces = c.tokens
        tokenTypes = types
        bosToken = c.bosTokenID
        eosToken = c.eosTokenID
        unknownToken = c.unknownTokenID
        paddingToken = c.paddingTokenID
        addsBOS = c.addBOS
        addsEOS = c.addEOS
        addSpacePrefix = c.model == .llama && c.addSpacePrefix

        var idByPiece: [String: Int32] = [:]
        idByPiece.reserveCapacity(count)
        for (id, piece) in c.tokens.enumerated() where idByPiece[piece] == nil { idByPiece[piece] = Int32(id) }
        self.idByPiece = idByPiece

        var specials: [(text: String, id: Int32)] = []
        for (id, type) in types.enumerated() where type == TokenType.control || type == TokenType.userDefined {
            specials.append((c.tokens[id], Int32(id)))
        }
        specialTokens = SpecialTokenMatcher(specials: specials)

        var pieceBytes: [[UInt8]] = []
        pieceBytes.reserveCapacity(count)
        var idsByBytes: [[UInt8]: Int32] = [:]
        idsByBytes.reserveCapacity(count)
        switch c.model {
        case .gpt2:
            for (id, piece) in c.tokens.enumerated() {
                let isText = types[id] == TokenType.normal || types[id] == TokenType.byte || types[id] == TokenType.unused
                let bytes = isText ? (ByteLevel.bytes(ofPiece: piece) ?? Array(piece.utf8)) : Array(piece.utf8)
                pieceBytes.append(bytes)
                if isText, idsByBytes[bytes] == nil { idsByBytes[bytes] = Int32(id) }
            }
            let bpe = try ByteLevelBPE(
                tokenIDsByBytes: idsByBytes, pieces: c.tokens, mergeList: c.merges, unknownTokenID: c.unknownTokenID)
            let preTokenizer = try PreTokenizer(name: c.preTokenizer)
            encoder = .byteLevel(bpe, preTokenizer, wholeWordIDs: preTokenizer.ignoresMergesForWholeWords ? idsByBytes : [:])
        case .llama:
            guard c.scores.count == count else {
                throw TokenizerError.inconsistentVocabulary("a llama (SentencePiece) vocabulary needs one score per token")
            }
            var byteTokens = [Int32](repeating: -1, count: 256)
            for (id, piece) in c.tokens.enumerated() {
                if types[id] == TokenType.byte, let byte = Self.byteValue(ofPiece: piece) {
                    pieceBytes.append([byte])
                    if byteTokens[Int(byte)] < 0 { byteTokens[Int(byte)] = Int32(id) }
                    continue
                }
                let isText = types[id] == TokenType.normal || types[id] == TokenType.userDefined || types[id] == TokenType.unused
                pieceBytes.append(isText ? Array(piece.replacingSentencePieceSpaces().utf8) : Array(piece.utf8))
                if isText, idsByBytes[Array(piece.utf8)] == nil { idsByBytes[Array(piece.utf8)] = Int32(id) }
            }
            encoder = .sentencePiece(SentencePieceBPE(
                idsByBytes: idsByBytes, scores: c.scores, byteTokens: byteTokens, unknownTokenID: c.unknownTokenID))
        }
        self.pieceBytes = pieceBytes

        var endOfGeneration = Set(c.extraEndOfGenerationIDs)
        if let eos = c.eosTokenID { endOfGeneration.insert(eos) }
        for piece in Self.endOfTurnPieces {
            if let id = idByPiece[piece], types[Int(id)] == TokenType.control || types[Int(id)] == TokenType.userDefined {
                endOfGeneration.insert(id)
            }
        }
        endOfGenerationTokens = endOfGeneration
    }

    public var vocabularySize: Int { pieces.count }

    public func tokenID(for piece: String) -> Int32? { idByPiece[piece] }

    /// The vocabulary's text of a token ("" for an id outside the vocabulary).
    public func piece(for id: Int32) -> String {
        id >= 0 && Int(id) < pieces.count ? pieces[Int(id)] : ""
    }

    /// Whether a token is a control token (bos, eos, `<|im_start|>`...) rather than text.
    public func isControl(_ id: Int32) -> Bool {
        id >= 0 && Int(id) < tokenTypes.count
            && (tokenTypes[Int(id)] == TokenType.control || tokenTypes[Int(id)] == TokenType.unknown)
    }

    /// `<0x41>` -> 0x41
    static func byteValue(ofPiece piece: String) -> UInt8? {
        guard piece.count == 6, piece.hasPrefix("<0x"), piece.hasSuffix(">") else { return nil }
        return UInt8(piece.dropFirst(3).dropLast(), radix: 16)
    }
}

extension String {
    func replacingSentencePieceSpaces() -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in unicodeScalars { scalars.append(scalar == "\u{2581}" ? " " : scalar) }
        return String(scalars)
    }
}
