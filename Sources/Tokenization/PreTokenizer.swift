/// Splits text into words before BPE, as the regexes llama.cpp and Hugging Face use for each
/// `tokenizer.ggml.pre`. The regexes are implemented as hand-written matchers over scalars
/// (PreTokenizerPatterns.swift). Like a regex split, text between matches becomes a word too.
enum PreTokenizer: Sendable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// `\p{N}` (every digit alone), then the GPT-2 pattern on each piece.
    case smollm
    /// Llama 3: case-insensitive contractions, `[^\r\n\p{L}\p{N}]?\p{L}+`, `\p{N}{1,3}`, ...
    case llama3
    /// Qwen2: Llama 3's pattern with single digits (`\p{N}`).
    case qwen2

    init(name: String?) throws {
        switch name ?? "default" {
        case "default", "gpt2", "gpt-2": self = .gpt2
        case "smollm": self = .smollm
        case "llama-bpe", "llama3", "llama-v3": self = .llama3
        case "qwen2": self = .qwen2
        case let other: throw TokenizerError.unsupportedPreTokenizer(other)
        }
    }

    /// Whether a word that is itself a vocabulary token skips the merges (Llama 3's `ignore_merges`).
    var ignoresMergesForWholeWords: Bool { self == .llama3 }

    /// Calls `body` with the scalar range of each word of `scalars`, in order.
    func split(_ scalars: [Unicode.Scalar], _ body: (Range<Int>) -> Void) {
        let classes = scalars.map(ScalarClass.of)
        let text = PatternInput(scalars: scalars, classes: classes)
        switch self {
        case .gpt2:
            Self.splitByPattern(text, 0..<scalars.count, PatternInput.matchGPT2, body)
        case .smollm:
            Self.splitByPattern(text, 0..<scalars.count, PatternInput.matchSingleNumber) { piece in
                Self.splitByPattern(text, piece, PatternInput.matchGPT2, body)
            }
        case .llama3:
            Self.splitByPattern(text, 0..<scalars.count, { $0.matchLlama3($1, $2, maxDigits: 3) }, body)
        case .qwen2:
            Self.splitByPattern(text, 0..<scalars.count, { $0.matchLlama3($1, $2, maxDigits: 1) }, body)
        }
    }

    /// A regex split: every match is a word, and each run of unmatched text between matches is one.
    private static func splitByPattern(
        _ text: PatternInput, _ range: Range<Int>,
        _ match: (PatternInput, Int, Int) -> Int?, _ body: (Range<Int>) -> Void
    ) {
        var position = range.lowerBound
        var unmatchedStart = position
        while position < range.upperBound {
            if let end = match(text, position, range.upperBound) {
                if unmatchedStart < position { body(unmatchedStart..<position) }
                body(position..<end)
                position = end
                unmatchedStart = end
            } else {
                position += 1
            }
        }
        if unmatchedStart < range.upperBound { body(unmatchedStart..<range.upperBound) }
    }
}
