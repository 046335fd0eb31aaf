/// Splits a template into text and the tokens inside `{{ }}` and `{% %}` (comments dropped),
/// applying whitespace control as Hugging Face renders chat templates: `{%- -%}` strip,
/// `trim_blocks` (the newline after a block tag goes) and `lstrip_blocks` (indentation
/// before a block tag goes).
struct JinjaToken: Sendable {
    enum Kind: Sendable, Equatable {
        case text(String)
        case expressionStart, expressionEnd
        case statementStart, statementEnd
        case name(String)
        case string(String)
        case int(Int)
        case double(Double)
        case symbol(String)
        case end
    }

    var kind: Kind
    /// Offset in the template's scalars, for error messages.
    var offset: Int
}

struct JinjaLexer {
    private let source: [Unicode.Scalar]
    private var position = 0
    private var tokens: [JinjaToken] = []
    private var keepNextNewline = false

    init(_ template: String) {
        // As Jinja reads a template: line endings become "\n" and one trailing newline is
        // dropped (keep_trailing_newline is off in Hugging Face's environment).
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(template.unicodeScalars.count)
        var previousWasCarriageReturn = false
        for scalar in template.unicodeScalars {
            if scalar == "\n" && previousWasCarriageReturn {
                previousWasCarriageReturn = false
                continue
            }
            previousWasCarriageReturn = scalar == "\r"
            scalars.append(scalar == "\r" ? "\n" : scalar)
        }
        if scalars.last == "\n" { scalars.removeLast() }
        source = scalars
    }

    static func tokenize(_ template: String) throws -> (tokens: [JinjaToken], location: JinjaLocation) {
        var lexer = JinjaLexer(template)
        try lexer.run()
        return (lexer.tokens, JinjaLocation(source: lexer.source))
    }

    private func error(_ message: String, at offset: Int) -> JinjaError {
        let (line, column) = JinjaLocation(source: source).lineAndColumn(of: offset)
        return .syntax("\(message) at line \(line), column \(column)")
    }

    private func starts(with text: String, at offset: Int) -> Bool {
        var i = offset
        for scalar in text.unicodeScalars {
            guard i < source.count, source[i] == scalar else { return false }
            i += 1
        }
        return true
    }

    private mutating func run() throws {
        /// Whether the text after the previous tag loses its leading whitespace (`-%}`) or its
        /// first newline (a block tag's `trim_blocks`).
        var stripNext = false, trimNewlineNext = false
        while position < source.count {
            // Text up to the next tag.
            var tagStart = position
            while tagStart < source.count {
                if source[tagStart] == "{", tagStart + 1 < source.count,
                   ["{", "%", "#"].contains(source[tagStart + 1]) { break }
                tagStart += 1
            }
            var text = source[position..<tagStart]
            if stripNext { text = text.drop { $0.properties.isWhitespace } }
            else if trimNewlineNext {
                if text.first == "\n" { text = text.dropFirst() }
                else if text.starts(with: ["\r", "\n"]) { text = text.dropFirst(2) }
            }
            var tagKind: Unicode.Scalar = " "
            if tagStart < source.count {
                tagKind = source[tagStart + 1]
                let marker: Unicode.Scalar? = tagStart + 2 < source.count ? source[tagStart + 2] : nil
                if marker == "-" {
                    while let last = text.last, last.properties.isWhitespace { text = text.dropLast() }
                } else if tagKind != "{", marker != "+" {
                    // lstrip_blocks: drop spaces and tabs between the line's start and the tag.
                    var i = text.endIndex
                    while i > text.startIndex, source[i - 1] == " " || source[i - 1] == "\t" { i -= 1 }
                    if i == 0 || source[i - 1] == "\n" {
                        text = text[..<i]
                    }
                }
            }
            if !text.isEmpty {
                tokens.append(JinjaToken(kind: .text(String(String.UnicodeScalarView(text))), offset: position))
            }
            guard tagStart < source.count else { break }
            position = tagStart + 2
            if position < source.count, source[position] == "-" || source[position] == "+" { position += 1 }
            switch tagKind {
            case "#":
                guard let close = (position..<source.count).first(where: { starts(with: "#}", at: $0) }) else {
                    throw error("unclosed comment", at: tagStart)
                }
                stripNext = close > position && source[close - 1] == "-"
                trimNewlineNext = true
                position = close + 2
            case "{":
                tokens.append(JinjaToken(kind: .expressionStart, offset: tagStart))
                stripNext = try lexExpression(closing: "}}", opened: tagStart)
                trimNewlineNext = false
                tokens.append(JinjaToken(kind: .expressionEnd, offset: position))
            default:
                tokens.append(JinjaToken(kind: .statementStart, offset: tagStart))
                keepNextNewline = false
                stripNext = try lexExpression(closing: "%}", opened: tagStart)
                trimNewlineNext = !keepNextNewline
                tokens.append(JinjaToken(kind: .statementEnd, offset: position))
            }
        }
        tokens.append(JinjaToken(kind: .end, offset: source.count))
    }

    private static let symbols = ["==", "!=", "<=", ">=", "//", "**", "<", ">", "+", "-", "*", "/", "%", "~",
                                  "|", ".", ",", ":", "(", ")", "[", "]", "{", "}", "="]

    /// Lexes up to and past `closing`; returns whether it was written with `-` (strip after).
    private mutating func lexExpression(closing: String, opened: Int) throws -> Bool {
        while true {
            while position < source.count, source[position].properties.isWhitespace { position += 1 }
            guard position < source.count else {
                throw error("'\(closing == "}}" ? "{{" : "{%")' is never closed", at: opened)
            }
            if starts(with: "-" + closing, at: position) {
                position += 3
                return true
            }
            if starts(with: "+" + closing, at: position) {
                // `+%}` keeps the newline after the tag (no trim_blocks).
                position += 3
                keepNextNewline = true
                return false
            }
            if starts(with: closing, at: position) {
                position += 2
                return false
            }
            let start = position
            let scalar = source[position]
            if scalar == "'" || scalar == "\"" {
                tokens.append(JinjaToken(kind: .string(try lexString(quote: scalar)), offset: start))
            } else if scalar.properties.numericType != nil, scalar.isASCII {
                tokens.append(JinjaToken(kind: lexNumber(), offset: start))
            } else if scalar == "_" || scalar.properties.isAlphabetic {
                while position < source.count,
                      source[position] == "_" || source[position].properties.isAlphabetic
                        || (source[position].isASCII && source[position].properties.numericType != nil) {
                    position += 1
                }
                tokens.append(JinjaToken(kind: .name(String(String.UnicodeScalarView(source[start..<position]))), offset: start))
            } else if let symbol = Self.symbols.first(where: { starts(with: $0, at: position) }) {
                position += symbol.unicodeScalars.count
                tokens.append(JinjaToken(kind: .symbol(symbol), offset: start))
            } else {
                throw error("unexpected character '\(scalar)'", at: start)
            }
        }
    }

    private mutating func lexString(quote: Unicode.Scalar) throws -> String {
        let start = position
        position += 1
        var value = String.UnicodeScalarView()
        while position < source.count, source[position] != quote {
            var scalar = source[position]
            if scalar == "\\", position + 1 < source.count {
                position += 1
                switch source[position] {
                case "n": scalar = "\n"
                case "t": scalar = "\t"
                case "r": scalar = "\r"
                default: scalar = source[position]
                }
            }
            value.append(scalar)
            position += 1
        }
        guard position < source.count else { throw error("unterminated string", at: start) }
        position += 1
        return String(value)
    }

    private mutating func lexNumber() -> JinjaToken.Kind {
        let start = position
        func digits() { while position < source.count, source[position].isASCII, source[position].properties.numericType != nil || source[position] == "_" { position += 1 } }
        digits()
        var isDouble = false
        if position + 1 < source.count, source[position] == ".", source[position + 1].isASCII,
           source[position + 1].properties.numericType != nil {
            isDouble = true
            position += 1
            digits()
        }
        let text = String(String.UnicodeScalarView(source[start..<position])).filter { $0 != "_" }
        return isDouble ? .double(Double(text) ?? 0) : .int(Int(text) ?? Int.max)
    }
}

/// Turns scalar offsets into 1-based lines and columns for error messages.
struct JinjaLocation: Sendable {
    let source: [Unicode.Scalar]

    func lineAndColumn(of offset: Int) -> (Int, Int) {
        var line = 1, column = 1
        for scalar in source[..<min(offset, source.count)] {
            if scalar == "\n" { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }
}
