/// Finds special tokens (control and user-defined) written literally in the text, so that
/// `<|im_start|>` becomes one token and the text around it is tokenized on its own.
/// At each position the longest special token that matches wins (leftmost-longest).
struct SpecialTokenMatcher: Sendable {
    enum Segment: Equatable {
        case text(Range<Int>)
        case special(Int32)
    }

    /// Special tokens by their first byte, longest first.
    private let candidates: [[(bytes: [UInt8], id: Int32)]]

    init(specials: [(text: String, id: Int32)]) {
        var candidates = [[(bytes: [UInt8], id: Int32)]](repeating: [], count: 256)
        for (text, id) in specials where !text.isEmpty {
            let bytes = Array(text.utf8)
            candidates[Int(bytes[0])].append((bytes, id))
        }
        for i in 0..<256 { candidates[i].sort { $0.bytes.count > $1.bytes.count } }
        self.candidates = candidates
    }

    func segments(of text: [UInt8]) -> [Segment] {
        var segments: [Segment] = []
        var textStart = 0
        var position = 0
        scan: while position < text.count {
            for candidate in candidates[Int(text[position])] where Self.matches(candidate.bytes, in: text, at: position) {
                if textStart < position { segments.append(.text(textStart..<position)) }
                segments.append(.special(candidate.id))
                position += candidate.bytes.count
                textStart = position
                continue scan
            }
            position += 1
        }
        if textStart < text.count { segments.append(.text(textStart..<text.count)) }
        return segments
    }

    private static func matches(_ needle: [UInt8], in text: [UInt8], at position: Int) -> Bool {
        guard position + needle.count <= text.count else { return false }
        for i in 0..<needle.count where text[position + i] != needle[i] { return false }
        return true
    }
}
