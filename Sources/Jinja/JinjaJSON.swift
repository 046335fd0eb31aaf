/// `tojson` as Hugging Face defines it for chat templates: Python's
/// `json.dumps(x, ensure_ascii=False, indent=indent)` — keys in insertion order, `", "` and
/// `": "` separators (`","` at line ends when indenting), non-ASCII text kept as is.
enum JinjaJSON {
    static func encode(_ value: JinjaValue, indent: Int?) throws -> String {
        var output = ""
        try write(value, indent: indent, depth: 0, to: &output)
        return output
    }

    private static func write(_ value: JinjaValue, indent: Int?, depth: Int, to output: inout String) throws {
        func newline(_ level: Int) {
            if let indent { output += "\n" + String(repeating: " ", count: indent * level) }
        }
        let separator = indent == nil ? ", " : ","
        switch value {
        case .none, .undefined: output += "null"
        case .bool(let b): output += b ? "true" : "false"
        case .int(let i): output += String(i)
        case .double(let d):
            guard d.isFinite else { output += d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity"); return }
            output += JinjaValue.pythonFloat(d)
        case .string(let s): writeString(s, to: &output)
        case .array(let items):
            guard !items.isEmpty else { output += "[]"; return }
            output += "["
            for (i, item) in items.enumerated() {
                if i > 0 { output += separator }
                newline(depth + 1)
                try write(item, indent: indent, depth: depth + 1, to: &output)
            }
            newline(depth)
            output += "]"
        case .object(let object):
            try writeObject(object, indent: indent, depth: depth, separator: separator, to: &output)
        case .namespace(let namespace):
            try writeObject(namespace.object, indent: indent, depth: depth, separator: separator, to: &output)
        case .function:
            throw JinjaError.render("a function cannot be converted to JSON")
        }
    }

    private static func writeObject(_ object: JinjaObject, indent: Int?, depth: Int, separator: String, to output: inout String) throws {
        guard !object.keys.isEmpty else { output += "{}"; return }
        output += "{"
        for (i, key) in object.keys.enumerated() {
            if i > 0 { output += separator }
            if let indent { output += "\n" + String(repeating: " ", count: indent * (depth + 1)) }
            writeString(key, to: &output)
            output += ": "
            try write(object[key]!, indent: indent, depth: depth + 1, to: &output)
        }
        if let indent { output += "\n" + String(repeating: " ", count: indent * depth) }
        output += "}"
    }

    private static func writeString(_ s: String, to output: inout String) {
        output += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{8}": output += "\\b"
            case "\u{C}": output += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        output += "\""
    }
}
