/// Turns a stream of tokens into text without ever emitting half a UTF-8 character: bytes of
/// a character split across tokens (emoji, CJK in byte-level BPE) wait for the next token.
public struct IncrementalDetokenizer: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecial: Bool
    private var pending: [UInt8] = []
    private var atStart: Bool

    /// `startsText`: the tokens begin a text (as `decode` assumes), so SentencePiece's dummy
    /// prefix space is dropped from the first one. Leave it false for a continuation of a
    /// prompt, where " Paris" must keep its space.
    public init(tokenizer: Tokenizer, skipSpecial: Bool = false, startsText: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
        self.atStart = startsText
    }

    /// The text that `token` completes (possibly "").
    public mutating func append(_ token: Int32) -> String {
        tokenizer.appendBytes(of: token, skipSpecial: skipSpecial, atStart: &atStart, to: &pending)
        let complete = Self.completePrefixLength(pending)
        guard complete > 0 else { return "" }
        let text = String(decoding: pending[..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// What is left at the end of the stream; an unfinished character becomes U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// How many leading bytes can be emitted: all but an unfinished character at the end.
    /// (An invalid sequence is emitted at once, as U+FFFD, rather than held forever.)
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        // Look back at most 3 bytes for the lead byte of the last character.
        var i = bytes.count - 1
        let limit = max(0, bytes.count - 4)
        while i >= limit {
            let byte = bytes[i]
            if byte & 0xC0 != 0x80 {
                // A lead (or ASCII) byte: is its character complete?
                let needed = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                return bytes.count - i >= needed ? bytes.count : i
            }
            i -= 1
        }
        return bytes.count
    }
}
