/// Finds stop strings in text that arrives in pieces. Text that could still be the start of a
/// stop string is held back until the next piece decides it, so no client ever sees part of
/// a stop string; the stop string itself is never emitted (OpenAI's rule).
///
/// Works on UTF-8 bytes: a stop string starts with a lead byte, so every cut it makes (a match,
/// or a held-back possible start) falls on a character boundary.
public struct StopStringMatcher: Sendable {
    private let stops: [[UInt8]]
    private var held: [UInt8] = []
    public private(set) var matched: String?

    public init(_ stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }.map { Array($0.utf8) }
    }

    /// The text that can be emitted now that `piece` has arrived. After a match (`matched`
    /// set) it returns the text before the stop string and ignores later pieces.
    public mutating func append(_ piece: String) -> String {
        guard matched == nil else { return "" }
        if stops.isEmpty { return piece }
        held += piece.utf8
        // The earliest match wins; for matches at one position, the longest stop string.
        var earliest: (start: Int, stop: [UInt8])?
        for stop in stops {
            if let start = Self.firstIndex(of: stop, in: held), start < (earliest?.start ?? .max) {
                earliest = (start, stop)
            }
        }
        if let earliest {
            matched = String(decoding: earliest.stop, as: UTF8.self)
            let text = String(decoding: held[..<earliest.start], as: UTF8.self)
            held.removeAll()
            return text
        }
        let keep = Self.longestSuffixThatStartsAStop(held, stops)
        let text = String(decoding: held[..<(held.count - keep)], as: UTF8.self)
        held.removeFirst(held.count - keep)
        return text
    }

    /// The held-back text, at the end of the stream (it turned out not to be a stop string).
    public mutating func finish() -> String {
        defer { held.removeAll() }
        return matched == nil ? String(decoding: held, as: UTF8.self) : ""
    }

    static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        outer: for start in 0...(haystack.count - needle.count) {
            for offset in 0..<needle.count where haystack[start + offset] != needle[offset] { continue outer }
            return start
        }
        return nil
    }

    /// Length of the longest proper suffix of `text` that is a prefix of some stop string.
    static func longestSuffixThatStartsAStop(_ text: [UInt8], _ stops: [[UInt8]]) -> Int {
        var best = 0
        for stop in stops {
            var length = min(stop.count - 1, text.count)
            while length > best {
                if text[(text.count - length)...].elementsEqual(stop[..<length]) { best = length; break }
                length -= 1
            }
        }
        return best
    }
}
