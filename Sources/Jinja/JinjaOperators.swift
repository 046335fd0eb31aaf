/// Access and arithmetic on values, with Python's semantics where chat templates rely on them
/// (negative indices, slices, `in`, `+` on strings and lists).
enum JinjaBuiltins {
    static func iterate(_ value: JinjaValue) throws -> [JinjaValue] {
        switch value {
        case .array(let items): return items
        case .object(let object): return object.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw JinjaError.render("cannot iterate over a \(value.typeName)")
        }
    }

    static func attribute(_ name: String, of value: JinjaValue, describedAs description: String) throws -> JinjaValue {
        switch value {
        case .undefined:
            throw JinjaError.render("'\(description)' is undefined (reading its attribute '\(name)')")
        case .object(let object):
            return object[name] ?? objectMethod(name, object) ?? .undefined
        case .namespace(let namespace):
            return namespace.object[name] ?? .undefined
        case .string(let s):
            return stringMethod(name, s) ?? .undefined
        default:
            return .undefined
        }
    }

    static func index(_ value: JinjaValue, _ key: JinjaValue, describedAs description: String) throws -> JinjaValue {
        switch (value, key) {
        case (.undefined, _):
            throw JinjaError.render("'\(description)' is undefined (reading \(key.pythonRepresentation()) of it)")
        case (.array(let items), .int(let i)):
            let index = i < 0 ? items.count + i : i
            return items.indices.contains(index) ? items[index] : .undefined
        case (.string(let s), .int(let i)):
            let scalars = Array(s.unicodeScalars)
            let index = i < 0 ? scalars.count + i : i
            return scalars.indices.contains(index) ? .string(String(scalars[index])) : .undefined
        case (.object, .string(let name)), (.namespace, .string(let name)):
            return try attribute(name, of: value, describedAs: description)
        default:
            return .undefined
        }
    }

    static func slice(_ value: JinjaValue, start: JinjaValue?, stop: JinjaValue?, step: JinjaValue?) throws -> JinjaValue {
        func integer(_ v: JinjaValue?) throws -> Int? {
            switch v {
            case nil, .none?: return nil
            case .int(let i)?: return i
            case let other?: throw JinjaError.render("slice indices must be integers, not \(other.typeName)")
            }
        }
        let step = try integer(step) ?? 1
        guard step != 0 else { throw JinjaError.render("slice step cannot be zero") }
        func indices(count: Int) throws -> [Int] {
            func clamp(_ i: Int?, _ defaultValue: Int) -> Int {
                guard var i else { return defaultValue }
                if i < 0 { i += count }
                return step > 0 ? min(max(i, 0), count) : min(max(i, -1), count - 1)
            }
            let from = clamp(try integer(start), step > 0 ? 0 : count - 1)
            let to = clamp(try integer(stop), step > 0 ? count : -1)
            return Array(stride(from: from, to: to, by: step))
        }
        switch value {
        case .array(let items): return .array(try indices(count: items.count).map { items[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var result = String.UnicodeScalarView()
            for i in try indices(count: scalars.count) { result.append(scalars[i]) }
            return .string(String(result))
        default: throw JinjaError.render("cannot slice a \(value.typeName)")
        }
    }

    static func binary(_ op: String, _ left: JinjaValue, _ right: JinjaValue) throws -> JinjaValue {
        switch op {
        case "==": return .bool(left.equals(right))
        case "!=": return .bool(!left.equals(right))
        case "~": return .string(left.text + right.text)
        case "in": return .bool(try contains(right, left))
        case "<", ">", "<=", ">=": return .bool(try compare(op, left, right))
        default: break
        }
        switch (op, left, right) {
        case ("+", .string(let a), .string(let b)): return .string(a + b)
        case ("+", .array(let a), .array(let b)): return .array(a + b)
        case ("*", .string(let s), .int(let n)), ("*", .int(let n), .string(let s)):
            return .string(String(repeating: s, count: max(0, n)))
        case (_, .int(let a), .int(let b)):
            switch op {
            case "+": return .int(a &+ b)
            case "-": return .int(a &- b)
            case "*": return .int(a &* b)
            case "/": return try divide(Double(a), Double(b))
            case "//", "%":
                guard b != 0 else { throw JinjaError.render("integer division or modulo by zero") }
                // Python floors.
                let q = Int((Double(a) / Double(b)).rounded(.down))
                return op == "//" ? .int(q) : .int(a - q * b)
            case "**": return b >= 0 ? .int(Int(pow(Double(a), Double(b)))) : .double(pow(Double(a), Double(b)))
            default: break
            }
        default: break
        }
        if let a = number(left), let b = number(right) {
            switch op {
            case "+": return .double(a + b)
            case "-": return .double(a - b)
            case "*": return .double(a * b)
            case "/": return try divide(a, b)
            case "//": return .double((a / b).rounded(.down))
            case "%": return .double(a - (a / b).rounded(.down) * b)
            case "**": return .double(pow(a, b))
            default: break
            }
        }
        throw JinjaError.render("unsupported operand types for \(op): \(left.typeName) and \(right.typeName)")
    }

    private static func divide(_ a: Double, _ b: Double) throws -> JinjaValue {
        guard b != 0 else { throw JinjaError.render("division by zero") }
        return .double(a / b)
    }

    private static func pow(_ a: Double, _ b: Double) -> Double {
        var result = 1.0
        if b == b.rounded(), abs(b) < 64 {
            for _ in 0..<Int(abs(b)) { result *= a }
            return b < 0 ? 1 / result : result
        }
        return .nan
    }

    static func number(_ value: JinjaValue) -> Double? {
        switch value {
        case .int(let i): Double(i)
        case .double(let d): d
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }

    private static func compare(_ op: String, _ left: JinjaValue, _ right: JinjaValue) throws -> Bool {
        if case .string(let a) = left, case .string(let b) = right {
            let (x, y) = (Array(a.unicodeScalars.map(\.value)), Array(b.unicodeScalars.map(\.value)))
            let less = x.lexicographicallyPrecedes(y), greater = y.lexicographicallyPrecedes(x)
            switch op {
            case "<": return less
            case ">": return greater
            case "<=": return !greater
            default: return !less
            }
        }
        guard let a = number(left), let b = number(right) else {
            throw JinjaError.render("cannot compare \(left.typeName) and \(right.typeName) with \(op)")
        }
        switch op {
        case "<": return a < b
        case ">": return a > b
        case "<=": return a <= b
        default: return a >= b
        }
    }

    static func contains(_ container: JinjaValue, _ item: JinjaValue) throws -> Bool {
        switch (container, item) {
        case (.string(let s), .string(let part)): return part.isEmpty || s.splitPython(separator: part).count > 1
        case (.array(let items), _): return items.contains { $0.equals(item) }
        case (.object(let object), .string(let key)): return object[key] != nil
        case (.object, _): return false
        case (.namespace(let namespace), .string(let key)): return namespace.object[key] != nil
        case (.undefined, _): return false
        default: throw JinjaError.render("'in' needs a string, list or dict on its right, not a \(container.typeName)")
        }
    }
}
