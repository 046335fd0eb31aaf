import GGUF

/// Writes GGUF files (version 3 by default, or 2): metadata of every value type and tensors
/// of any type from raw bytes. Used by tests across modules to make small models.
public struct GGUFWriter {
    public struct Tensor {
        public var name: String
        public var shape: [Int]
        public var type: GGMLType
        public var data: [UInt8]
    }

    public let version: UInt32
    public let alignment: Int
    public private(set) var metadata: [(key: String, value: GGUFValue)] = []
    public private(set) var tensors: [Tensor] = []

    /// An alignment other than the default 32 is recorded as `general.alignment`.
    public init(version: UInt32 = 3, alignment: Int = 32) {
        self.version = version
        self.alignment = alignment
        if alignment != 32 { metadata.append(("general.alignment", .uint32(UInt32(truncatingIfNeeded: alignment)))) }
    }

    public mutating func add(_ key: String, _ value: GGUFValue) {
        metadata.append((key, value))
    }

    /// Adds a tensor; `data` must hold exactly the bytes its shape and type need.
    public mutating func addTensor(name: String, shape: [Int], type: GGMLType, data: [UInt8]) throws {
        guard !shape.isEmpty, shape.count <= 4, shape.allSatisfy({ $0 >= 0 }) else {
            throw GGUFError.invalidWrite("tensor '\(name)' has an invalid shape \(shape)")
        }
        guard shape[0] % type.blockSize == 0 else {
            throw GGUFError.partialBlock(tensor: name, type: type, rowLength: shape[0])
        }
        let expected = type.byteCount(elements: shape.reduce(1, *))
        guard data.count == expected else {
            throw GGUFError.invalidWrite("tensor '\(name)' (\(type), shape \(shape)) needs \(expected) bytes, got \(data.count)")
        }
        tensors.append(Tensor(name: name, shape: shape, type: type, data: data))
    }

    /// Adds a tensor of `type` quantized from `values` (see `quantize`).
    public mutating func addTensor(name: String, shape: [Int], type: GGMLType = .f32, values: [Float]) throws {
        try addTensor(name: name, shape: shape, type: type, data: quantize(values, to: type))
    }

    /// The whole file. Tensor data follows the header at `alignment`, each tensor padded to
    /// `alignment`; the last tensor is not padded, so the file ends where its data ends.
    public func serialize() throws -> [UInt8] {
        guard version == 2 || version == 3 else { throw GGUFError.invalidWrite("version \(version) (supported: 2, 3)") }
        guard alignment > 0, alignment & (alignment - 1) == 0 else {
            throw GGUFError.invalidWrite("alignment \(alignment) is not a power of two")
        }
        var out: [UInt8] = Array("GGUF".utf8)
        out.appendLE(version)
        out.appendLE(UInt64(tensors.count))
        out.appendLE(UInt64(metadata.count))
        for (key, value) in metadata {
            out.appendString(key)
            out.appendLE(value.type.rawValue)
            try out.appendValue(value, key: key)
        }
        var offset = 0
        var offsets: [Int] = []
        for tensor in tensors {
            offsets.append(offset)
            offset = padded(offset + tensor.data.count)
        }
        for (tensor, offset) in zip(tensors, offsets) {
            out.appendString(tensor.name)
            out.appendLE(UInt32(tensor.shape.count))
            for dimension in tensor.shape { out.appendLE(UInt64(dimension)) }
            out.appendLE(tensor.type.rawValue)
            out.appendLE(UInt64(offset))
        }
        out.append(contentsOf: repeatElement(0, count: padded(out.count) - out.count))
        let dataStart = out.count
        for (tensor, offset) in zip(tensors, offsets) {
            out.append(contentsOf: repeatElement(0, count: dataStart + offset - out.count))
            out.append(contentsOf: tensor.data)
        }
        return out
    }

    public func write(to path: String) throws {
        let bytes = try serialize()
        try writeFile(bytes, to: path)
    }

    private func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}

extension [UInt8] {
    fileprivate mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    fileprivate mutating func appendString(_ string: String) {
        appendLE(UInt64(string.utf8.count))
        append(contentsOf: string.utf8)
    }

    fileprivate mutating func appendValue(_ value: GGUFValue, key: String) throws {
        switch value {
        case .uint8(let v): appendLE(v)
        case .int8(let v): appendLE(v)
        case .uint16(let v): appendLE(v)
        case .int16(let v): appendLE(v)
        case .uint32(let v): appendLE(v)
        case .int32(let v): appendLE(v)
        case .uint64(let v): appendLE(v)
        case .int64(let v): appendLE(v)
        case .float32(let v): appendLE(v.bitPattern)
        case .float64(let v): appendLE(v.bitPattern)
        case .bool(let v): append(v ? 1 : 0)
        case .string(let v): appendString(v)
        case .array(let elements):
            let elementType = elements.first?.type ?? .uint8
            guard let odd = elements.first(where: { $0.type != elementType }) else {
                appendLE(elementType.rawValue)
                appendLE(UInt64(elements.count))
                for element in elements { try appendValue(element, key: key) }
                return
            }
            throw GGUFError.invalidWrite("array for key '\(key)' mixes \(elementType) and \(odd.type) elements")
        }
    }
}
