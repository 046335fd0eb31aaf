/// The character classes the pre-tokenizer regexes use, computed once per scalar:
/// `\p{L}`, `\p{N}`, `\s` (Unicode White_Space) and `[\r\n]`.
struct ScalarClass: OptionSet, Sendable {
    let rawValue: UInt8
    static let letter = ScalarClass(rawValue: 1)
    static let number = ScalarClass(rawValue: 2)
    static let whitespace = ScalarClass(rawValue: 4)
    static let newline = ScalarClass(rawValue: 8)

    static func of(_ scalar: Unicode.Scalar) -> ScalarClass {
        if scalar.value < 128 { return asciiTable[Int(scalar.value)] }
        return classify(scalar)
    }

    private static let asciiTable: [ScalarClass] = (0..<128).map { classify(Unicode.Scalar(UInt8($0))) }

    private static func classify(_ scalar: Unicode.Scalar) -> ScalarClass {
        var result: ScalarClass = []
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            result.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber:
            result.insert(.number)
        default: break
        }
        if scalar.properties.isWhitespace { result.insert(.whitespace) }
        if scalar == "\r" || scalar == "\n" { result.insert(.newline) }
        return result
    }
}
