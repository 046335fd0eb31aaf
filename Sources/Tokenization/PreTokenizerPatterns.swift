/// The pre-tokenizer regexes as matchers. Each `match…(at:end:)` returns where the pattern's
/// match starting exactly at `start` ends (nil: no match there), with the regex's semantics:
/// ordered alternation, greedy quantifiers with backtracking, lookahead bounded by `end`
/// (the end of the piece being split, as each piece is split on its own).
struct PatternInput {
    let scalars: [Unicode.Scalar]
    let classes: [ScalarClass]

    private func isLetter(_ i: Int) -> Bool { classes[i].contains(.letter) }
    private func isNumber(_ i: Int) -> Bool { classes[i].contains(.number) }
    private func isSpace(_ i: Int) -> Bool { classes[i].contains(.whitespace) }
    /// `[^\s\p{L}\p{N}]`
    private func isOther(_ i: Int) -> Bool { classes[i].isDisjoint(with: [.letter, .number, .whitespace]) }

    /// The end of the run of scalars from `start` satisfying `predicate`.
    private func run(from start: Int, _ end: Int, _ predicate: (Int) -> Bool) -> Int {
        var i = start
        while i < end && predicate(i) { i += 1 }
        return i
    }

    /// ` ?X+` where X is `predicate`.
    private func optionalSpaceThenRun(_ start: Int, _ end: Int, _ predicate: (Int) -> Bool) -> Int? {
        if scalars[start] == " ", start + 1 < end, predicate(start + 1) {
            return run(from: start + 1, end, predicate)
        }
        if predicate(start) { return run(from: start, end, predicate) }
        return nil
    }

    /// `\s+(?!\S)|\s+`: all of a whitespace run at the end of the piece; before a non-space,
    /// all but its last scalar (which then leads the next word), or the single scalar.
    private func whitespace(_ start: Int, _ end: Int) -> Int? {
        guard isSpace(start) else { return nil }
        let runEnd = run(from: start, end, isSpace)
        if runEnd == end || runEnd - start == 1 { return runEnd }
        return runEnd - 1
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, case-sensitive (GPT-2) or not (Llama 3).
    private func contraction(_ start: Int, _ end: Int, caseInsensitive: Bool) -> Int? {
        guard scalars[start] == "'", start + 1 < end else { return nil }
        func lower(_ i: Int) -> Unicode.Scalar? {
            guard i < end else { return nil }
            let s = scalars[i]
            if caseInsensitive, s.value >= 65, s.value <= 90 { return Unicode.Scalar(s.value + 32) }
            return s
        }
        switch lower(start + 1) {
        case "s", "t", "m", "d": return start + 2
        case "r", "v": return lower(start + 2) == "e" ? start + 3 : nil
        case "l": return lower(start + 2) == "l" ? start + 3 : nil
        default: return nil
        }
    }

    /// `\p{N}`
    static func matchSingleNumber(_ text: PatternInput, _ start: Int, _ end: Int) -> Int? {
        text.isNumber(start) ? start + 1 : nil
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    static func matchGPT2(_ text: PatternInput, _ start: Int, _ end: Int) -> Int? {
        text.contraction(start, end, caseInsensitive: false)
            ?? text.optionalSpaceThenRun(start, end, text.isLetter)
            ?? text.optionalSpaceThenRun(start, end, text.isNumber)
            ?? text.optionalSpaceThenRun(start, end, text.isOther)
            ?? text.whitespace(start, end)
    }

    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}|
    ///  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    func matchLlama3(_ start: Int, _ end: Int, maxDigits: Int) -> Int? {
        if let e = contraction(start, end, caseInsensitive: true) { return e }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if classes[start].isDisjoint(with: [.newline, .letter, .number]), start + 1 < end, isLetter(start + 1) {
            return run(from: start + 1, end, isLetter)
        }
        if isLetter(start) { return run(from: start, end, isLetter) }
        // \p{N}{1,maxDigits}
        if isNumber(start) { return run(from: start, min(end, start + maxDigits), isNumber) }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        if let e = optionalSpaceThenRun(start, end, isOther) {
            return run(from: e, end) { classes[$0].contains(.newline) }
        }
        guard isSpace(start) else { return nil }
        // \s*[\r\n]+ : the whitespace run up to and including its last newline.
        let runEnd = run(from: start, end, isSpace)
        if let lastNewline = (start..<runEnd).last(where: { classes[$0].contains(.newline) }) {
            return lastNewline + 1
        }
        return whitespace(start, end)
    }
}
