/// Parses the parts of a GGUF file before its data section (specification: ggml
/// docs/gguf.md): magic "GGUF", uint32 version, uint64 tensor count, uint64 metadata count,
/// the metadata key/value pairs, the tensor table, then padding to `general.alignment`.
struct GGUFParser {
    static let magic: [UInt8] = Array("GGUF".utf8)
    static let defaultAlignment = 32
    static let maxDimensions: UInt32 = 4
    static let maxArrayNesting = 16

    struct Header {
        var version: UInt32
        var metadata: [String: GGUFValue]
        var metadataKeys: [String]
        var tensors: [GGUFTensorInfo]
        var alignment: Int
        var dataOffset: Int
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> Header {
        var cursor = ByteCursor(bytes)
        let magicBytes = try cursor.readBytes(4, "magic")
        guard Array(magicBytes) == magic else { throw GGUFError.badMagic(Array(magicBytes)) }
        let version = try cursor.read(UInt32.self, "version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(version) }
        let tensorCount = try cursor.read(UInt64.self, "tensor count")
        let metadataCount = try cursor.read(UInt64.self, "metadata count")

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        // Each entry takes at least 12 bytes, so a count beyond the file size fails on
        // reading rather than here; the loop never reserves memory from the count.
        var index: UInt64 = 0
        while index < metadataCount {
            let key = try cursor.readString("key of metadata entry \(index)")
            let rawType = try cursor.read(UInt32.self, "value type of '\(key)'")
            let value = try readValue(rawType, key: key, depth: 0, &cursor)
            guard metadata.updateValue(value, forKey: key) == nil else { throw GGUFError.duplicateKey(key) }
            keys.append(key)
            index += 1
        }

        var alignment = defaultAlignment
        if let value = metadata["general.alignment"] {
            guard case .uint32(let a) = value else {
                throw GGUFError.wrongType(key: "general.alignment", expected: "uint32", actual: value.typeDescription)
            }
            guard a != 0, a & (a - 1) == 0 else { throw GGUFError.badAlignment(UInt64(a)) }
            alignment = Int(a)
        }

        var tensors: [GGUFTensorInfo] = []
        var rawOffsets: [UInt64] = []
        var names: Set<String> = []
        index = 0
        while index < tensorCount {
            let name = try cursor.readString("name of tensor \(index)")
            let dimensions = try cursor.read(UInt32.self, "dimension count of tensor '\(name)'")
            guard dimensions <= maxDimensions else {
                throw GGUFError.tooManyDimensions(tensor: name, dimensions: dimensions)
            }
            var rawShape: [UInt64] = []
            for d in 0..<Int(dimensions) {
                rawShape.append(try cursor.read(UInt64.self, "dimension \(d) of tensor '\(name)'"))
            }
            let rawType = try cursor.read(UInt32.self, "type of tensor '\(name)'")
            let offset = try cursor.read(UInt64.self, "data offset of tensor '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw GGUFError.unknownTensorType(rawType, tensor: name)
            }
            let shape = try checkedShape(rawShape, tensor: name)
            let rowLength = shape.first ?? 1
            guard rowLength % type.blockSize == 0 else {
                throw GGUFError.partialBlock(tensor: name, type: type, rowLength: rowLength)
            }
            let elements = shape.reduce(1, *)
            let (byteCount, overflow) = (elements / type.blockSize).multipliedReportingOverflow(by: type.bytesPerBlock)
            guard !overflow else { throw GGUFError.invalidShape(tensor: name, shape: rawShape) }
            guard offset % UInt64(alignment) == 0 else {
                throw GGUFError.misalignedTensor(tensor: name, offset: offset, alignment: alignment)
            }
            guard names.insert(name).inserted else { throw GGUFError.duplicateTensor(name) }
            rawOffsets.append(offset)
            tensors.append(GGUFTensorInfo(
                name: name, shape: shape, type: type, offset: Int(clamping: offset), byteCount: byteCount))
            index += 1
        }

        let headerEnd = cursor.offset
        let dataOffset = (headerEnd + alignment - 1) / alignment * alignment
        let dataSize = max(0, bytes.count - dataOffset)
        for (tensor, offset) in zip(tensors, rawOffsets) {
            let (end, overflow) = offset.addingReportingOverflow(UInt64(tensor.byteCount))
            guard !overflow, end <= UInt64(dataSize) else {
                throw GGUFError.tensorOutOfBounds(
                    tensor: tensor.name, offset: offset, byteCount: tensor.byteCount, dataSize: dataSize)
            }
        }
        return Header(
            version: version, metadata: metadata, metadataKeys: keys, tensors: tensors,
            alignment: alignment, dataOffset: dataOffset)
    }

    private static func checkedShape(_ raw: [UInt64], tensor: String) throws -> [Int] {
        var product = 1
        var shape: [Int] = []
        for dimension in raw {
            guard let d = Int(exactly: dimension) else { throw GGUFError.invalidShape(tensor: tensor, shape: raw) }
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            guard !overflow else { throw GGUFError.invalidShape(tensor: tensor, shape: raw) }
            product = p
            shape.append(d)
        }
        return shape
    }

    private static func readValue(
        _ rawType: UInt32, key: String, depth: Int, _ cursor: inout ByteCursor
    ) throws -> GGUFValue {
        guard let type = GGUFValueType(rawValue: rawType) else {
            throw GGUFError.unknownValueType(rawType, key: key)
        }
        func what() -> String { "value of '\(key)'" }  // built only when an error needs it
        switch type {
        case .uint8: return .uint8(try cursor.read(UInt8.self, what()))
        case .int8: return .int8(try cursor.read(Int8.self, what()))
        case .uint16: return .uint16(try cursor.read(UInt16.self, what()))
        case .int16: return .int16(try cursor.read(Int16.self, what()))
        case .uint32: return .uint32(try cursor.read(UInt32.self, what()))
        case .int32: return .int32(try cursor.read(Int32.self, what()))
        case .uint64: return .uint64(try cursor.read(UInt64.self, what()))
        case .int64: return .int64(try cursor.read(Int64.self, what()))
        case .float32: return .float32(Float(bitPattern: try cursor.read(UInt32.self, what())))
        case .float64: return .float64(Double(bitPattern: try cursor.read(UInt64.self, what())))
        case .bool: return .bool(try cursor.read(UInt8.self, what()) != 0)
        case .string: return .string(try cursor.readString(what()))
        case .array:
            guard depth < maxArrayNesting else { throw GGUFError.nestingTooDeep(key: key) }
            let elementType = try cursor.read(UInt32.self, "array element type of '\(key)'")
            guard GGUFValueType(rawValue: elementType) != nil else {
                throw GGUFError.unknownValueType(elementType, key: key)
            }
            let count = try cursor.read(UInt64.self, "array length of '\(key)'")
            var elements: [GGUFValue] = []
            // Every element takes at least one byte: never reserve more than the bytes left.
            elements.reserveCapacity(Int(min(count, UInt64(cursor.remaining))))
            var i: UInt64 = 0
            while i < count {
                elements.append(try readValue(elementType, key: key, depth: depth + 1, &cursor))
                i += 1
            }
            return .array(elements)
        }
    }
}
