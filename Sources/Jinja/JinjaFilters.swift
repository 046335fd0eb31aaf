/// Filters (`x | trim`), tests (`x is defined`), global functions and string/dict methods.
/// Each name here is also listed in `JinjaParser.supported…`, which rejects the rest at parse time.
extension JinjaBuiltins {
    static func filter(_ name: String, _ value: JinjaValue, _ args: [JinjaValue], _ kwargs: [String: JinjaValue]) throws -> JinjaValue {
        func argument(_ index: Int, _ key: String) -> JinjaValue? {
            kwargs[key] ?? (index < args.count ? args[index] : nil)
        }
        func string(_ what: String) throws -> String {
            switch value {
            case .string(let s): return s
            case .undefined: return ""
            default: throw JinjaError.render("the '\(what)' filter needs a string, not a \(value.typeName)")
            }
        }
        switch name {
        case "trim":
            var characters: String?
            if case .string(let given)? = argument(0, "chars") { characters = given }
            return .string(try string(name).pythonStrip(characters))
        case "length", "count":
            switch value {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .array(let a): return .int(a.count)
            case .object(let o): return .int(o.keys.count)
            case .undefined: return .int(0)
            default: throw JinjaError.render("a \(value.typeName) has no length")
            }
        case "upper": return .string(try string(name).uppercased())
        case "lower": return .string(try string(name).lowercased())
        case "capitalize":
            let s = try string(name)
            return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "title": return .string(try string(name).jinjaTitle())
        case "string": return .string(value.text)
        case "safe", "e", "escape":
            return name == "safe" ? value : .string(value.text.htmlEscaped())
        case "tojson":
            let indent: Int?
            if case .int(let i)? = argument(0, "indent") { indent = i } else { indent = nil }
            return .string(try JinjaJSON.encode(value, indent: indent))
        case "default", "d":
            let fallback = argument(0, "default_value") ?? .string("")
            let boolean = argument(1, "boolean")?.isTruthy ?? false
            return value.isUndefined || (boolean && !value.isTruthy) ? fallback : value
        case "join":
            let separator = argument(0, "d")?.text ?? ""
            var items = try iterate(value)
            if let attribute = argument(1, "attribute") {
                items = try items.map { try JinjaBuiltins.attribute(attribute.text, of: $0, describedAs: "item") }
            }
            return .string(items.map(\.text).joined(separator: separator))
        case "first": return try iterate(value).first ?? .undefined
        case "last": return try iterate(value).last ?? .undefined
        case "list": return .array(try iterate(value))
        case "reverse":
            if case .string(let s) = value { return .string(String(s.reversed())) }
            return .array(try iterate(value).reversed())
        case "unique":
            var seen: [JinjaValue] = []
            for item in try iterate(value) where !seen.contains(where: { $0.equals(item) }) { seen.append(item) }
            return .array(seen)
        case "sort":
            return .array(try iterate(value).sorted { a, b in (try? binary("<", a, b).isTruthy) ?? false })
        case "items", "dictsort":
            guard case .object(let object) = value else { throw JinjaError.render("'\(name)' needs a dict, not a \(value.typeName)") }
            let keys = name == "dictsort" ? object.keys.sorted() : object.keys
            return .array(keys.map { .array([.string($0), object[$0]!]) })
        case "int":
            switch value {
            case .int: return value
            case .double(let d): return .int(Int(d))
            case .bool(let b): return .int(b ? 1 : 0)
            case .string(let s): return .int(Int(s.trimmingPythonWhitespace()) ?? (argument(0, "default").flatMap { if case .int(let i) = $0 { i } else { nil } } ?? 0))
            default: return .int(0)
            }
        case "float":
            switch value {
            case .string(let s): return .double(Double(s.trimmingPythonWhitespace()) ?? 0)
            default: return .double(number(value) ?? 0)
            }
        case "abs":
            switch value {
            case .int(let i): return .int(abs(i))
            case .double(let d): return .double(abs(d))
            default: throw JinjaError.render("'abs' needs a number, not a \(value.typeName)")
            }
        case "round":
            guard let d = number(value) else { throw JinjaError.render("'round' needs a number, not a \(value.typeName)") }
            var digits = 0
            if case .int(let p)? = argument(0, "precision") { digits = p }
            var scale = 1.0
            for _ in 0..<max(0, digits) { scale *= 10 }
            return .double((d * scale).rounded(.toNearestOrEven) / scale)
        case "replace":
            guard let old = argument(0, "old"), let new = argument(1, "new") else {
                throw JinjaError.render("'replace' needs the old and new strings")
            }
            return .string(try string(name).replacingAll(old.text, with: new.text))
        case "indent":
            let width: String
            switch argument(0, "width") {
            case .string(let s)?: width = s
            case .int(let n)?: width = String(repeating: " ", count: n)
            default: width = "    "
            }
            // As jinja2 does it: a newline appended, Python's splitlines (every kind of line
            // break becomes \n), blank lines left alone unless `blank`, the first line only
            // with `first` (even when it is empty).
            let lines = (try string(name) + "\n").pythonLines()
            let indentFirst = argument(1, "first")?.isTruthy ?? false
            let indentBlank = argument(2, "blank")?.isTruthy ?? false
            var text = lines[0]
            if indentBlank {
                text = lines.joined(separator: "\n" + width)
            } else if lines.count > 1 {
                text += "\n" + lines.dropFirst().map { $0.isEmpty ? $0 : width + $0 }.joined(separator: "\n")
            }
            return .string(indentFirst ? width + text : text)
        case "wordcount":
            // jinja2 counts matches of the regular expression \w+.
            return .int(try string(name).unicodeScalars.split { !$0.isPythonWordCharacter }.count)
        case "map":
            let items = try iterate(value)
            if let attribute = kwargs["attribute"] {
                return .array(try items.map { item in
                    let v = try JinjaBuiltins.attribute(attribute.text, of: item, describedAs: "item")
                    return v.isUndefined ? (kwargs["default"] ?? .undefined) : v
                })
            }
            guard case .string(let filterName)? = args.first, JinjaParser.supportedFilters.contains(filterName) else {
                throw JinjaError.render("'map' needs attribute= or the name of a supported filter")
            }
            return .array(try items.map { try filter(filterName, $0, Array(args.dropFirst()), [:]) })
        case "select", "reject", "selectattr", "rejectattr":
            let byAttribute = name.hasSuffix("attr")
            let keep = name.hasPrefix("select")
            var rest = args
            var attribute: String?
            if byAttribute {
                guard !rest.isEmpty else { throw JinjaError.render("'\(name)' needs an attribute name") }
                attribute = rest.removeFirst().text
            }
            let testName = rest.isEmpty ? nil : rest.removeFirst().text
            if let testName, !JinjaParser.supportedTests.contains(testName) {
                throw JinjaError.unsupported("test '\(testName)' in '\(name)'")
            }
            return .array(try iterate(value).filter { item in
                let subject = try attribute.map { try JinjaBuiltins.attribute($0, of: item, describedAs: "item") } ?? item
                let passes = try testName.map { try test($0, subject, rest) } ?? subject.isTruthy
                return passes == keep
            })
        default:
            throw JinjaError.unsupported("filter '\(name)'")
        }
    }

    static func test(_ name: String, _ value: JinjaValue, _ args: [JinjaValue]) throws -> Bool {
        func other() throws -> JinjaValue {
            guard let first = args.first else { throw JinjaError.render("the test '\(name)' needs an argument") }
            return first
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": if case .none = value { return true } else { return false }
        case "string": if case .string = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "number": return number(value) != nil
        case "mapping":
            switch value {
            case .object, .namespace: return true
            default: return false
            }
        case "iterable", "sequence":
            switch value {
            case .array, .object, .string: return true
            default: return false
            }
        case "callable": if case .function = value { return true } else { return false }
        case "equalto", "eq", "==", "sameas": return value.equals(try other())
        case "ne", "!=": return !value.equals(try other())
        case "gt": return try binary(">", value, try other()).isTruthy
        case "lt": return try binary("<", value, try other()).isTruthy
        case "ge": return try binary(">=", value, try other()).isTruthy
        case "le": return try binary("<=", value, try other()).isTruthy
        case "in": return try contains(try other(), value)
        case "lower": if case .string(let s) = value { return s == s.lowercased() } else { return false }
        case "upper": if case .string(let s) = value { return s == s.uppercased() } else { return false }
        case "odd", "even", "divisibleby":
            guard case .int(let i) = value else { throw JinjaError.render("the test '\(name)' needs an integer") }
            if name == "odd" { return i % 2 != 0 }
            if name == "even" { return i % 2 == 0 }
            guard case .int(let d) = try other(), d != 0 else { throw JinjaError.render("divisibleby needs a non-zero integer") }
            return i % d == 0
        default:
            throw JinjaError.unsupported("test '\(name)'")
        }
    }

    static func callGlobal(_ name: String, _ args: [JinjaValue], _ kwargs: [String: JinjaValue]) throws -> JinjaValue {
        switch name {
        case "raise_exception":
            throw JinjaError.raised(args.first?.text ?? "")
        case "range":
            let bounds = try args.map { v -> Int in
                guard case .int(let i) = v else { throw JinjaError.render("range() needs integers") }
                return i
            }
            switch bounds.count {
            case 1: return .array((0..<max(0, bounds[0])).map { .int($0) })
            case 2: return .array(stride(from: bounds[0], to: bounds[1], by: 1).map { .int($0) })
            case 3 where bounds[2] != 0: return .array(stride(from: bounds[0], to: bounds[1], by: bounds[2]).map { .int($0) })
            default: throw JinjaError.render("range() takes 1 to 3 integers (and a non-zero step)")
            }
        case "namespace", "dict":
            var object = JinjaObject()
            if case .object(let initial)? = args.first { object = initial }
            for key in kwargs.keys.sorted() { object[key] = kwargs[key] }
            return name == "dict" ? .object(object) : .namespace(JinjaNamespace(object))
        case "strftime_now":
            return .string(JinjaClock.now(format: args.first?.text ?? "%Y-%m-%d"))
        default:
            throw JinjaError.render("'\(name)' is undefined")
        }
    }

    static func stringMethod(_ name: String, _ s: String) -> JinjaValue? {
        func method(_ body: @escaping ([JinjaValue]) throws -> JinjaValue) -> JinjaValue {
            .function(JinjaFunction(name: name) { args, _ in try body(args) })
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            return method { args in
                var characters: String?
                if case .string(let given)? = args.first { characters = given }
                return .string(s.pythonStrip(characters, leading: name != "rstrip", trailing: name != "lstrip"))
            }
        case "upper": return method { _ in .string(s.uppercased()) }
        case "lower": return method { _ in .string(s.lowercased()) }
        case "title": return method { _ in .string(s.pythonTitle()) }
        case "startswith": return method { args in .bool(s.unicodeScalars.starts(with: (args.first?.text ?? "").unicodeScalars)) }
        case "endswith":
            return method { args in .bool(s.unicodeScalars.reversed().starts(with: (args.first?.text ?? "").unicodeScalars.reversed())) }
        case "replace":
            return method { args in
                guard args.count >= 2 else { throw JinjaError.render("replace() needs the old and new strings") }
                return .string(s.replacingAll(args[0].text, with: args[1].text))
            }
        case "split":
            return method { args in
                if let separator = args.first, case .string(let sep) = separator {
                    return .array(s.splitPython(separator: sep).map { .string($0) })
                }
                return .array(s.unicodeScalars.split { $0.isPythonWhitespace }.map { .string(String(Substring($0))) })
            }
        default: return nil
        }
    }

    static func objectMethod(_ name: String, _ object: JinjaObject) -> JinjaValue? {
        switch name {
        case "items": .function(JinjaFunction(name: name) { _, _ in .array(object.keys.map { .array([.string($0), object[$0]!]) }) })
        case "keys": .function(JinjaFunction(name: name) { _, _ in .array(object.keys.map { .string($0) }) })
        case "values": .function(JinjaFunction(name: name) { _, _ in .array(object.keys.map { object[$0]! }) })
        case "get":
            .function(JinjaFunction(name: name) { args, _ in
                guard let key = args.first else { throw JinjaError.render("get() needs a key") }
                return object[key.text] ?? (args.count > 1 ? args[1] : .none)
            })
        default: nil
        }
    }
}

extension String {
    /// Python's `str.strip()`: whitespace (or the given characters) removed from both ends.
    func trimmingPythonWhitespace() -> String { pythonStrip(nil) }

    /// Python's `str.strip(chars)`, `lstrip` (only `leading`) and `rstrip` (only `trailing`):
    /// code points in `characters`, or Python's whitespace when nil.
    func pythonStrip(_ characters: String?, leading: Bool = true, trailing: Bool = true) -> String {
        let set = characters.map { Set($0.unicodeScalars) }
        let strips = { (scalar: Unicode.Scalar) in set?.contains(scalar) ?? scalar.isPythonWhitespace }
        let scalars = unicodeScalars
        var start = scalars.startIndex, end = scalars.endIndex
        while leading, start < end, strips(scalars[start]) { start = scalars.index(after: start) }
        while trailing, end > start, strips(scalars[scalars.index(before: end)]) { end = scalars.index(before: end) }
        return String(Substring(scalars[start..<end]))
    }

    /// Python's `str.splitlines()`: lines without their breaks (\n, \r, \r\n, \v, \f, U+001C…U+001E,
    /// U+0085, U+2028, U+2029); a final break ends the last line without starting another.
    func pythonLines() -> [String] {
        var lines: [String] = []
        var line = String.UnicodeScalarView()
        var previousWasReturn = false
        for scalar in unicodeScalars {
            defer { previousWasReturn = scalar == "\r" }
            if scalar == "\n" && previousWasReturn { continue }
            switch scalar.value {
            case 0x0A...0x0D, 0x1C...0x1E, 0x85, 0x2028, 0x2029:
                lines.append(String(line))
                line = String.UnicodeScalarView()
            default:
                line.append(scalar)
            }
        }
        if !line.isEmpty { lines.append(String(line)) }
        return lines
    }

    /// jinja2's `title` filter: words start after `-`, whitespace, `(`, `{`, `[` or `<`; each
    /// word's first character upper case, the rest lower case. (Python's `str.title()`, the
    /// string method, is `pythonTitle`.)
    func jinjaTitle() -> String {
        var result = ""
        var startsWord = true
        for scalar in unicodeScalars {
            if scalar.isPythonWhitespace || "-({[<".unicodeScalars.contains(scalar) {
                result.unicodeScalars.append(scalar)
                startsWord = true
            } else {
                result += startsWord ? String(scalar).uppercased() : String(scalar).lowercased()
                startsWord = false
            }
        }
        return result
    }

    func pythonTitle() -> String {
        var result = ""
        var previousIsLetter = false
        for character in self {
            result += previousIsLetter ? character.lowercased() : character.uppercased()
            previousIsLetter = character.isLetter
        }
        return result
    }

    /// Python's `str.split(sep)`: matched code point by code point, as Python compares
    /// strings (Swift's own matching works on characters and finds no "\n" inside "\r\n").
    func splitPython(separator: String) -> [String] {
        let scalars = Array(unicodeScalars), pattern = Array(separator.unicodeScalars)
        guard !pattern.isEmpty else { return [self] }
        var parts: [String] = []
        var start = 0, index = 0
        while index + pattern.count <= scalars.count {
            if scalars[index..<index + pattern.count].elementsEqual(pattern) {
                parts.append(String(String.UnicodeScalarView(scalars[start..<index])))
                index += pattern.count
                start = index
            } else {
                index += 1
            }
        }
        parts.append(String(String.UnicodeScalarView(scalars[start...])))
        return parts
    }

    func htmlEscaped() -> String {
        var result = ""
        for character in self {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&#34;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}

extension Unicode.Scalar {
    /// Python's `str.isspace()`: Unicode's White_Space and the ASCII separators U+001C…U+001F.
    var isPythonWhitespace: Bool { properties.isWhitespace || (0x1C...0x1F).contains(value) }

    /// What Python's regular expression `\w` matches: letters, digits and other numbers, `_`.
    var isPythonWordCharacter: Bool {
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber:
            true
        default:
            self == "_"
        }
    }
}
