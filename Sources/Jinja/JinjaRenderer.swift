/// Runs a parsed template against a context and collects the output.
struct JinjaRenderer {
    private var scopes: [[String: JinjaValue]]
    private(set) var output = ""

    init(context: [String: JinjaValue]) {
        scopes = [context]
    }

    enum Flow { case normal, breakLoop, continueLoop }

    // MARK: statements

    mutating func render(_ statements: [JinjaStatement]) throws -> Flow {
        for statement in statements {
            switch statement {
            case .text(let text):
                output += text
            case .output(let expression):
                output += try evaluate(expression).text
            case .ifChain(let branches, let otherwise):
                var chosen = otherwise
                for branch in branches where try evaluate(branch.condition).isTruthy {
                    chosen = branch.body
                    break
                }
                let flow = try render(chosen)
                if flow != .normal { return flow }
            case .forLoop(let targets, let iterable, let filter, let body, let otherwise):
                try renderLoop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise)
            case .set(let name, let attribute, let expression):
                let value = try evaluate(expression)
                if let attribute {
                    guard case .namespace(let namespace) = lookup(name) else {
                        throw JinjaError.render("cannot set attribute '\(attribute)' of '\(name)', which is not a namespace")
                    }
                    namespace.object[attribute] = value
                } else {
                    scopes[scopes.count - 1][name] = value
                }
            case .breakLoop: return .breakLoop
            case .continueLoop: return .continueLoop
            }
        }
        return .normal
    }

    private mutating func renderLoop(
        targets: [String], iterable: JinjaExpression, filter: JinjaExpression?,
        body: [JinjaStatement], otherwise: [JinjaStatement]
    ) throws {
        var items = try JinjaBuiltins.iterate(try evaluate(iterable))
        // A loop's own scope: its variables and `set`s inside it do not outlive it (Jinja's rule).
        scopes.append([:])
        defer { scopes.removeLast() }
        if let filter {
            items = try items.filter { item in
                try bind(targets, to: item)
                return try evaluate(filter).isTruthy
            }
        }
        if items.isEmpty {
            _ = try render(otherwise)
            return
        }
        for (i, item) in items.enumerated() {
            scopes[scopes.count - 1] = [:]
            try bind(targets, to: item)
            scopes[scopes.count - 1]["loop"] = .object(JinjaObject([
                ("index0", .int(i)), ("index", .int(i + 1)), ("first", .bool(i == 0)),
                ("last", .bool(i == items.count - 1)), ("length", .int(items.count)),
                ("revindex", .int(items.count - i)), ("revindex0", .int(items.count - i - 1)),
                ("previtem", i > 0 ? items[i - 1] : .undefined),
                ("nextitem", i + 1 < items.count ? items[i + 1] : .undefined),
                ("cycle", .function(JinjaFunction(name: "cycle") { args, _ in
                    args.isEmpty ? .undefined : args[i % args.count]
                })),
            ]))
            if try render(body) == .breakLoop { break }
        }
    }

    private mutating func bind(_ targets: [String], to item: JinjaValue) throws {
        if targets.count == 1 {
            scopes[scopes.count - 1][targets[0]] = item
            return
        }
        let parts = try JinjaBuiltins.iterate(item)
        guard parts.count == targets.count else {
            throw JinjaError.render("cannot unpack \(parts.count) values into \(targets.count) loop variables")
        }
        for (name, value) in zip(targets, parts) { scopes[scopes.count - 1][name] = value }
    }

    private func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() {
            if let value = scope[name] { return value }
        }
        if JinjaParser.supportedFunctions.contains(name) {
            return .function(JinjaFunction(name: name) { try JinjaBuiltins.callGlobal(name, $0, $1) })
        }
        return .undefined
    }

    // MARK: expressions

    mutating func evaluate(_ expression: JinjaExpression) throws -> JinjaValue {
        switch expression {
        case .literal(let literal):
            switch literal {
            case .none: return .none
            case .bool(let b): return .bool(b)
            case .int(let i): return .int(i)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            }
        case .name(let name):
            return lookup(name)
        case .list(let items):
            return .array(try items.map { try evaluate($0) })
        case .dict(let pairs):
            var object = JinjaObject()
            for pair in pairs { object[try evaluate(pair.key).text] = try evaluate(pair.value) }
            return .object(object)
        case .attribute(let base, let name):
            return try JinjaBuiltins.attribute(name, of: try evaluate(base), describedAs: Self.describe(base))
        case .index(let base, let key):
            return try JinjaBuiltins.index(try evaluate(base), try evaluate(key), describedAs: Self.describe(base))
        case .slice(let base, let start, let stop, let step):
            return try JinjaBuiltins.slice(
                try evaluate(base), start: try start.map { try evaluate($0) },
                stop: try stop.map { try evaluate($0) }, step: try step.map { try evaluate($0) })
        case .call(let callee, let arguments):
            let (positional, keyword) = try evaluate(arguments)
            guard case .function(let function) = try evaluate(callee) else {
                throw JinjaError.render("'\(Self.describe(callee))' is not callable")
            }
            return try function.call(positional, keyword)
        case .filter(let base, let name, let arguments):
            let (positional, keyword) = try evaluate(arguments)
            return try JinjaBuiltins.filter(name, try evaluate(base), positional, keyword)
        case .test(let base, let name, let arguments, let negated):
            let (positional, _) = try evaluate(arguments)
            let result = try JinjaBuiltins.test(name, try evaluate(base), positional)
            return .bool(result != negated)
        case .not(let operand):
            return .bool(!(try evaluate(operand).isTruthy))
        case .negate(let operand):
            switch try evaluate(operand) {
            case .int(let i): return .int(-i)
            case .double(let d): return .double(-d)
            case let other: throw JinjaError.render("cannot negate a \(other.typeName)")
            }
        case .and(let left, let right):
            let l = try evaluate(left)
            return l.isTruthy ? try evaluate(right) : l
        case .or(let left, let right):
            let l = try evaluate(left)
            return l.isTruthy ? l : try evaluate(right)
        case .binary(let op, let left, let right):
            return try JinjaBuiltins.binary(op, try evaluate(left), try evaluate(right))
        case .conditional(let value, let condition, let otherwise):
            if try evaluate(condition).isTruthy { return try evaluate(value) }
            return try otherwise.map { try evaluate($0) } ?? .undefined
        }
    }

    private mutating func evaluate(_ arguments: JinjaArguments) throws -> ([JinjaValue], [String: JinjaValue]) {
        let positional = try arguments.positional.map { try evaluate($0) }
        var keyword: [String: JinjaValue] = [:]
        for (name, value) in arguments.keyword { keyword[name] = try evaluate(value) }
        return (positional, keyword)
    }

    /// A short source-like name of an expression for error messages.
    static func describe(_ expression: JinjaExpression) -> String {
        switch expression {
        case .name(let name): name
        case .attribute(let base, let name): describe(base) + "." + name
        case .index(let base, .literal(.string(let key))): describe(base) + "['\(key)']"
        case .index(let base, .literal(.int(let i))): describe(base) + "[\(i)]"
        case .index(let base, _): describe(base) + "[…]"
        case .call(let base, _): describe(base) + "(…)"
        default: "expression"
        }
    }
}
