/// Typed access to metadata, with errors that name the key and what was wrong.
extension GGUFFile {
    /// `general.architecture`, e.g. `llama` or `qwen2`.
    public var architecture: String {
        get throws { try string("general.architecture") }
    }

    public func value(_ key: String) throws -> GGUFValue {
        guard let value = metadata[key] else { throw GGUFError.missingKey(key) }
        return value
    }

    /// An integer value of any integer type.
    public func int(_ key: String) throws -> Int {
        try typed(key, "integer") { $0.intValue }
    }

    /// A non-negative integer value of any integer type (counts, ids, lengths).
    public func uint(_ key: String) throws -> Int {
        try typed(key, "unsigned integer") { $0.intValue.flatMap { $0 >= 0 ? $0 : nil } }
    }

    /// A number (float or integer types) as Float.
    public func float(_ key: String) throws -> Float {
        try typed(key, "number") { $0.floatValue }
    }

    /// A number (float or integer types) as Double.
    public func double(_ key: String) throws -> Double {
        try typed(key, "number") { $0.doubleValue }
    }

    public func string(_ key: String) throws -> String {
        try typed(key, "string") { $0.stringValue }
    }

    public func bool(_ key: String) throws -> Bool {
        try typed(key, "bool") { $0.boolValue }
    }

    public func stringArray(_ key: String) throws -> [String] {
        try typed(key, "array of string") { $0.stringArray }
    }

    public func floatArray(_ key: String) throws -> [Float] {
        try typed(key, "array of number") { $0.floatArray }
    }

    public func intArray(_ key: String) throws -> [Int] {
        try typed(key, "array of integer") { $0.intArray }
    }

    private func typed<T>(_ key: String, _ expected: String, _ convert: (GGUFValue) -> T?) throws -> T {
        let value = try value(key)
        guard let result = convert(value) else {
            throw GGUFError.wrongType(key: key, expected: expected, actual: value.typeDescription)
        }
        return result
    }
}
