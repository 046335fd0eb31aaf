/// Reads little-endian GGUF primitives from a byte range, checking every read against the
/// end so that a truncated or corrupt file becomes a `GGUFError`, never an out-of-bounds read.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    /// Checks that `count` more bytes exist and returns where they start.
    private mutating func take(_ count: Int, _ what: @autoclosure () -> String) throws -> Int {
        guard count >= 0, count <= remaining else {
            throw GGUFError.truncated(what: what(), offset: offset, needed: count, available: remaining)
        }
        defer { offset += count }
        return offset
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let at = try take(MemoryLayout<T>.size, what())
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: T.self))
    }

    mutating func readBytes(_ count: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        let at = try take(count, what())
        return UnsafeRawBufferPointer(rebasing: bytes[at..<(at + count)])
    }

    /// A GGUF string: uint64 length, then that many UTF-8 bytes (no terminator).
    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        let start = offset
        let length = try read(UInt64.self, "length of \(what())")
        guard length <= UInt64(remaining) else {
            throw GGUFError.truncated(what: what(), offset: offset, needed: Int(clamping: length), available: remaining)
        }
        let raw = try readBytes(Int(length), what())
        guard let string = String(validating: raw, as: UTF8.self) else {
            throw GGUFError.invalidString(what: what(), offset: start)
        }
        return string
    }
}
