/// Recursive-descent parser with Jinja's precedence (lowest first): `x if c else y`, `or`,
/// `and`, `not`, comparisons and `in`, `+ -`, `~`, `* / // %`, `**`, unary `-`, then
/// filters `|`, tests `is`, calls, attributes and subscripts.
/// Anything outside the supported subset is rejected here, at start-up, with its location.
struct JinjaParser {
    private let tokens: [JinjaToken]
    private let location: JinjaLocation
    private var index = 0

    static func parse(_ template: String) throws -> [JinjaStatement] {
        let (tokens, location) = try JinjaLexer.tokenize(template)
        var parser = JinjaParser(tokens: tokens, location: location)
        let (body, terminator) = try parser.parseBlock(until: [])
        if let terminator { throw parser.error("unexpected '{% \(terminator) %}'", at: parser.index - 1) }
        return body
    }

    private init(tokens: [JinjaToken], location: JinjaLocation) {
        self.tokens = tokens
        self.location = location
    }

    static let supportedFilters: Set<String> = [
        "trim", "length", "count", "upper", "lower", "tojson", "default", "d", "capitalize", "title",
        "join", "first", "last", "list", "string", "int", "float", "reject", "select", "rejectattr",
        "selectattr", "map", "replace", "items", "safe", "abs", "unique", "reverse", "sort", "dictsort",
        "indent", "wordcount", "round", "e", "escape",
    ]
    static let supportedTests: Set<String> = [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "mapping",
        "iterable", "sequence", "true", "false", "equalto", "eq", "==", "ne", "!=", "odd", "even",
        "divisibleby", "in", "lower", "upper", "callable", "sameas", "gt", "lt", "ge", "le",
    ]
    static let supportedFunctions: Set<String> = ["raise_exception", "range", "namespace", "dict", "strftime_now"]

    // MARK: tokens

    private var current: JinjaToken.Kind { tokens[index].kind }

    private func error(_ message: String, at tokenIndex: Int? = nil) -> JinjaError {
        let (line, column) = location.lineAndColumn(of: tokens[min(tokenIndex ?? index, tokens.count - 1)].offset)
        return .syntax("\(message) at line \(line), column \(column)")
    }

    private func unsupported(_ what: String, at tokenIndex: Int) -> JinjaError {
        let (line, column) = location.lineAndColumn(of: tokens[tokenIndex].offset)
        return .unsupported("\(what) at line \(line), column \(column)")
    }

    private mutating func advance() -> JinjaToken.Kind {
        let kind = tokens[index].kind
        if index < tokens.count - 1 { index += 1 }
        return kind
    }

    private mutating func accept(_ symbol: String) -> Bool {
        if current == .symbol(symbol) { index += 1; return true }
        return false
    }

    private mutating func acceptName(_ name: String) -> Bool {
        if current == .name(name) { index += 1; return true }
        return false
    }

    private mutating func expect(_ kind: JinjaToken.Kind, _ description: String) throws {
        guard current == kind else { throw error("expected \(description), found \(describe(current))") }
        index += 1
    }

    private mutating func expectName() throws -> String {
        guard case .name(let name) = current else { throw error("expected a name, found \(describe(current))") }
        index += 1
        return name
    }

    private func describe(_ kind: JinjaToken.Kind) -> String {
        switch kind {
        case .text: "text"
        case .expressionStart: "'{{'"
        case .expressionEnd: "'}}'"
        case .statementStart: "'{%'"
        case .statementEnd: "'%}'"
        case .name(let n): "'\(n)'"
        case .string(let s): "string '\(s)'"
        case .int(let i): "\(i)"
        case .double(let d): "\(d)"
        case .symbol(let s): "'\(s)'"
        case .end: "the end of the template"
        }
    }

    // MARK: statements

    /// Parses statements until a `{% name %}` with a name in `terminators` (consumed up to the
    /// name) or the end; returns the body and which terminator ended it.
    private mutating func parseBlock(until terminators: Set<String>) throws -> ([JinjaStatement], String?) {
        var body: [JinjaStatement] = []
        while true {
            switch current {
            case .end:
                return (body, nil)
            case .text(let text):
                index += 1
                body.append(.text(text))
            case .expressionStart:
                index += 1
                body.append(.output(try parseExpression()))
                try expect(.expressionEnd, "'}}'")
            case .statementStart:
                let tagIndex = index
                index += 1
                let name = try expectName()
                if terminators.contains(name) { return (body, name) }
                body.append(try parseStatement(name, at: tagIndex + 1))
            default:
                throw error("unexpected \(describe(current))")
            }
        }
    }

    private mutating func parseStatement(_ name: String, at nameIndex: Int) throws -> JinjaStatement {
        switch name {
        case "if": return try parseIf()
        case "for": return try parseFor()
        case "set":
            let target = try expectName()
            var attribute: String?
            if accept(".") { attribute = try expectName() }
            guard accept("=") else {
                throw unsupported("block assignment '{% set \(target) %}…{% endset %}'", at: nameIndex)
            }
            let value = try parseExpression()
            try expect(.statementEnd, "'%}'")
            return .set(name: target, attribute: attribute, value)
        case "break", "continue":
            try expect(.statementEnd, "'%}'")
            return name == "break" ? .breakLoop : .continueLoop
        case "endif", "endfor", "elif", "else":
            throw error("unexpected '{% \(name) %}'", at: nameIndex)
        default:
            throw unsupported("tag '\(name)'", at: nameIndex)
        }
    }

    private mutating func parseIf() throws -> JinjaStatement {
        var branches: [(condition: JinjaExpression, body: [JinjaStatement])] = []
        var condition = try parseExpression()
        try expect(.statementEnd, "'%}'")
        while true {
            let (body, terminator) = try parseBlock(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            switch terminator {
            case "elif":
                condition = try parseExpression()
                try expect(.statementEnd, "'%}'")
            case "else":
                try expect(.statementEnd, "'%}'")
                let (otherwise, end) = try parseBlock(until: ["endif"])
                guard end != nil else { throw error("'{% if %}' is missing its '{% endif %}'") }
                try expect(.statementEnd, "'%}'")
                return .ifChain(branches, otherwise: otherwise)
            case "endif":
                try expect(.statementEnd, "'%}'")
                return .ifChain(branches, otherwise: [])
            default:
                throw error("'{% if %}' is missing its '{% endif %}'")
            }
        }
    }

    private mutating func parseFor() throws -> JinjaStatement {
        var targets = [try expectName()]
        while accept(",") { targets.append(try expectName()) }
        guard acceptName("in") else { throw error("expected 'in', found \(describe(current))") }
        let iterable = try parseOr()
        var filter: JinjaExpression?
        if acceptName("if") { filter = try parseOr() }
        if acceptName("recursive") { throw unsupported("recursive loops", at: index - 1) }
        try expect(.statementEnd, "'%}'")
        let (body, terminator) = try parseBlock(until: ["else", "endfor"])
        var otherwise: [JinjaStatement] = []
        switch terminator {
        case "else":
            try expect(.statementEnd, "'%}'")
            let (elseBody, end) = try parseBlock(until: ["endfor"])
            guard end != nil else { throw error("'{% for %}' is missing its '{% endfor %}'") }
            otherwise = elseBody
        case "endfor": break
        default: throw error("'{% for %}' is missing its '{% endfor %}'")
        }
        try expect(.statementEnd, "'%}'")
        return .forLoop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise)
    }

    // MARK: expressions

    private mutating func parseExpression() throws -> JinjaExpression {
        let value = try parseOr()
        guard acceptName("if") else { return value }
        let condition = try parseOr()
        let otherwise = acceptName("else") ? try parseExpression() : nil
        return .conditional(value, condition: condition, otherwise: otherwise)
    }

    private mutating func parseOr() throws -> JinjaExpression {
        var left = try parseAnd()
        while acceptName("or") { left = .or(left, try parseAnd()) }
        return left
    }

    private mutating func parseAnd() throws -> JinjaExpression {
        var left = try parseNot()
        while acceptName("and") { left = .and(left, try parseNot()) }
        return left
    }

    private mutating func parseNot() throws -> JinjaExpression {
        if acceptName("not") { return .not(try parseNot()) }
        return try parseComparison()
    }

    private mutating func parseComparison() throws -> JinjaExpression {
        var left = try parseSum()
        while true {
            if case .symbol(let s) = current, ["==", "!=", "<", ">", "<=", ">="].contains(s) {
                index += 1
                left = .binary(s, left, try parseSum())
            } else if acceptName("in") {
                left = .binary("in", left, try parseSum())
            } else if current == .name("not"), tokens[index + 1].kind == .name("in") {
                index += 2
                left = .not(.binary("in", left, try parseSum()))
            } else {
                return left
            }
        }
    }

    private mutating func parseSum() throws -> JinjaExpression {
        var left = try parseConcat()
        while case .symbol(let s) = current, s == "+" || s == "-" {
            index += 1
            left = .binary(s, left, try parseConcat())
        }
        return left
    }

    private mutating func parseConcat() throws -> JinjaExpression {
        var left = try parseProduct()
        while accept("~") { left = .binary("~", left, try parseProduct()) }
        return left
    }

    private mutating func parseProduct() throws -> JinjaExpression {
        var left = try parsePower()
        while case .symbol(let s) = current, ["*", "/", "//", "%"].contains(s) {
            index += 1
            left = .binary(s, left, try parsePower())
        }
        return left
    }

    private mutating func parsePower() throws -> JinjaExpression {
        var left = try parseUnary()
        while accept("**") { left = .binary("**", left, try parseUnary()) }
        return left
    }

    private mutating func parseUnary() throws -> JinjaExpression {
        if accept("-") { return .negate(try parseUnary()) }
        if accept("+") { return try parseUnary() }
        var value = try parsePostfix(try parsePrimary())
        // Filters and tests bind to the operand just before them.
        while true {
            if accept("|") {
                let nameIndex = index
                let name = try expectName()
                guard Self.supportedFilters.contains(name) else { throw unsupported("filter '\(name)'", at: nameIndex) }
                let arguments = current == .symbol("(") ? try parseArguments() : JinjaArguments()
                value = try parsePostfix(.filter(value, name: name, arguments))
            } else if acceptName("is") {
                let negated = acceptName("not")
                let nameIndex = index
                let name: String
                switch current {
                case .name(let n): name = n
                case .symbol("=="), .symbol("!="): name = describe(current).trimmingQuotes()
                default: throw error("expected a test name, found \(describe(current))")
                }
                index += 1
                guard Self.supportedTests.contains(name) else { throw unsupported("test '\(name)'", at: nameIndex) }
                var arguments = JinjaArguments()
                if current == .symbol("(") {
                    arguments = try parseArguments()
                } else if Self.startsPrimary(current) {
                    arguments.positional = [try parsePostfix(try parsePrimary())]
                }
                value = .test(value, name: name, arguments, negated: negated)
            } else {
                return value
            }
        }
    }

    private static func startsPrimary(_ kind: JinjaToken.Kind) -> Bool {
        switch kind {
        case .string, .int, .double: true
        case .name(let n): !["and", "or", "if", "else", "in", "not", "is"].contains(n)
        default: false
        }
    }

    private mutating func parsePrimary() throws -> JinjaExpression {
        let start = index
        switch advance() {
        case .string(var s):
            // Adjacent string literals concatenate.
            while case .string(let more) = current { s += more; index += 1 }
            return .literal(.string(s))
        case .int(let i): return .literal(.int(i))
        case .double(let d): return .literal(.double(d))
        case .name(let name):
            switch name {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default:
                if current == .symbol("("), !Self.supportedFunctions.contains(name) {
                    throw unsupported("function '\(name)'", at: start)
                }
                return .name(name)
            }
        case .symbol("("):
            let first = try parseExpression()
            if accept(")") { return first }
            var items = [first]
            while accept(",") {
                if current == .symbol(")") { break }
                items.append(try parseExpression())
            }
            try expect(.symbol(")"), "')'")
            return .list(items)
        case .symbol("["):
            var items: [JinjaExpression] = []
            while !accept("]") {
                items.append(try parseExpression())
                if !accept(",") { try expect(.symbol("]"), "']'"); break }
            }
            return .list(items)
        case .symbol("{"):
            var pairs: [(key: JinjaExpression, value: JinjaExpression)] = []
            while !accept("}") {
                let key = try parseExpression()
                try expect(.symbol(":"), "':'")
                pairs.append((key, try parseExpression()))
                if !accept(",") { try expect(.symbol("}"), "'}'"); break }
            }
            return .dict(pairs)
        case let other:
            throw error("expected a value, found \(describe(other))", at: start)
        }
    }

    private mutating func parsePostfix(_ base: JinjaExpression) throws -> JinjaExpression {
        var value = base
        while true {
            if accept(".") {
                value = .attribute(value, try expectName())
            } else if current == .symbol("(") {
                value = .call(value, try parseArguments())
            } else if accept("[") {
                var parts: [JinjaExpression?] = [nil]
                var isSlice = false
                while !accept("]") {
                    if accept(":") {
                        isSlice = true
                        parts.append(nil)
                        continue
                    }
                    guard parts[parts.count - 1] == nil else { throw error("expected ']', found \(describe(current))") }
                    parts[parts.count - 1] = try parseExpression()
                }
                if isSlice {
                    guard parts.count <= 3 else { throw error("a slice takes at most 3 parts") }
                    value = .slice(value, start: parts[0], stop: parts.count > 1 ? parts[1] : nil,
                                   step: parts.count > 2 ? parts[2] : nil)
                } else {
                    guard let key = parts[0] else { throw error("empty subscript") }
                    value = .index(value, key)
                }
            } else {
                return value
            }
        }
    }

    private mutating func parseArguments() throws -> JinjaArguments {
        try expect(.symbol("("), "'('")
        var arguments = JinjaArguments()
        while !accept(")") {
            if case .name(let name) = current, tokens[index + 1].kind == .symbol("=") {
                index += 2
                arguments.keyword.append((name, try parseExpression()))
            } else {
                arguments.positional.append(try parseExpression())
            }
            if !accept(",") { try expect(.symbol(")"), "')'"); break }
        }
        return arguments
    }
}

extension String {
    fileprivate func trimmingQuotes() -> String { filter { $0 != "'" } }
}
