/// A value while a template renders: Jinja's (Python's) data model, as far as chat templates
/// use it. Objects keep their keys' insertion order, as Python dicts do (it shows in `tojson`).
public enum JinjaValue {
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    case object(JinjaObject)
    /// `namespace(...)`: the one mutable value; `{% set ns.x = … %}` changes it across scopes.
    case namespace(JinjaNamespace)
    /// A loop's `loop` variable, a bound string/dict method, or a global function.
    case function(JinjaFunction)

    var isTruthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .array(let a): !a.isEmpty
        case .object(let o): !o.keys.isEmpty
        case .namespace, .function: true
        }
    }

    var isUndefined: Bool { if case .undefined = self { true } else { false } }

    /// Python's `str()`, which `{{ }}` and `~` use.
    var text: String {
        switch self {
        case .undefined: ""
        case .string(let s): s
        default: pythonRepresentation(topLevel: true)
        }
    }

    /// Python's `repr()` (strings quoted) or `str()` at the top level.
    func pythonRepresentation(topLevel: Bool = false) -> String {
        switch self {
        case .undefined: ""
        case .none: "None"
        case .bool(let b): b ? "True" : "False"
        case .int(let i): String(i)
        case .double(let d): Self.pythonFloat(d)
        case .string(let s): topLevel ? s : "'" + s.replacingAll("\\", with: "\\\\").replacingAll("'", with: "\\'") + "'"
        case .array(let a): "[" + a.map { $0.pythonRepresentation() }.joined(separator: ", ") + "]"
        case .object(let o):
            "{" + o.keys.map { "'\($0)': " + o.values[$0]!.pythonRepresentation() }.joined(separator: ", ") + "}"
        case .namespace: "<Namespace>"
        case .function: "<function>"
        }
    }

    static func pythonFloat(_ d: Double) -> String {
        if d.isFinite, d == d.rounded(), abs(d) < 1e16 { return String(Int(d)) + ".0" }
        return String(d)
    }

    var typeName: String {
        switch self {
        case .undefined: "undefined"
        case .none: "none"
        case .bool: "boolean"
        case .int: "integer"
        case .double: "float"
        case .string: "string"
        case .array: "list"
        case .object: "dict"
        case .namespace: "namespace"
        case .function: "function"
        }
    }
}

/// A dict: keys in insertion order.
public struct JinjaObject {
    var keys: [String] = []
    var values: [String: JinjaValue] = [:]

    public init() {}

    public init(_ pairs: [(String, JinjaValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    subscript(key: String) -> JinjaValue? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil { keys.removeAll { $0 == key } }
            values[key] = newValue
        }
    }
}

public final class JinjaNamespace {
    var object: JinjaObject
    init(_ object: JinjaObject) { self.object = object }
}

public struct JinjaFunction {
    let name: String
    let call: ([JinjaValue], [String: JinjaValue]) throws -> JinjaValue
}

extension JinjaValue {
    /// Python's `==` for the values templates compare.
    func equals(_ other: JinjaValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): true
        case (.bool(let a), .bool(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.int(let a), .double(let b)): Double(a) == b
        case (.double(let a), .int(let b)): a == Double(b)
        case (.double(let a), .double(let b)): a == b
        case (.bool(let a), .int(let b)), (.int(let b), .bool(let a)): (a ? 1 : 0) == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case (.object(let a), .object(let b)):
            a.keys.count == b.keys.count && a.keys.allSatisfy { key in b.values[key].map { a.values[key]!.equals($0) } ?? false }
        case (.namespace(let a), .namespace(let b)): a === b
        default: false
        }
    }
}

extension String {
    /// Python's `str.replace(old, new)`, code point by code point (see `splitPython`).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        return splitPython(separator: target).joined(separator: replacement)
    }
}
