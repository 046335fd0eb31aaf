import GGUF

/// Metadata look-ups for the model loader: a missing required key is an `EngineError`
/// naming it; a key of the wrong type is GGUF's error naming the key and both types.
extension GGUFFile {
    func requiredString(_ key: String) throws -> String {
        guard metadata[key] != nil else { throw EngineError.missingMetadata(key) }
        return try string(key)
    }

    func requiredInt(_ key: String) throws -> Int {
        guard metadata[key] != nil else { throw EngineError.missingMetadata(key) }
        return try uint(key)
    }

    func optionalInt(_ key: String) throws -> Int? {
        metadata[key] == nil ? nil : try uint(key)
    }

    func optionalFloat(_ key: String) throws -> Float? {
        metadata[key] == nil ? nil : try float(key)
    }

    func optionalString(_ key: String) throws -> String? {
        metadata[key] == nil ? nil : try string(key)
    }
}
