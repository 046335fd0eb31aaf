/// A GGUF model file, memory-mapped read-only. Parsing checks the whole header and tensor
/// table up front, so every tensor returned lies inside the mapping.
///
/// Sendable: every stored property is immutable after init, and the mapping it points
/// into is read-only (see `MemoryMapping`).
public final class GGUFFile: Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// The tensor table, in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Byte offset of the data section from the start of the file.
    public let dataOffset: Int
    public var fileSize: Int { mapping.bytes.count }

    private let mapping: MemoryMapping
    private let tensorIndex: [String: Int]

    public init(path: String) throws {
        let mapping = try MemoryMapping(path: path)
        let header = try GGUFParser.parse(mapping.bytes)
        self.path = path
        self.mapping = mapping
        version = header.version
        metadata = header.metadata
        metadataKeys = header.metadataKeys
        tensors = header.tensors
        alignment = header.alignment
        dataOffset = header.dataOffset
        tensorIndex = Dictionary(uniqueKeysWithValues: header.tensors.enumerated().map { ($1.name, $0) })
    }

    public func tensor(named name: String) throws -> GGUFTensorInfo {
        guard let index = tensorIndex[name] else { throw GGUFError.missingTensor(name) }
        return tensors[index]
    }

    public func hasTensor(named name: String) -> Bool { tensorIndex[name] != nil }

    /// The tensor's bytes, inside the mapping (valid while this file object lives).
    public func data(for tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        precondition(tensorIndex[tensor.name].map { tensors[$0] } == tensor,
                     "tensor '\(tensor.name)' does not belong to \(path)")
        guard tensor.byteCount > 0, let base = mapping.bytes.baseAddress else {
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawBufferPointer(start: base + dataOffset + tensor.offset, count: tensor.byteCount)
    }

    /// Every element of the tensor as Float (F32 copied, every other supported type dequantized).
    public func floats(for tensor: GGUFTensorInfo) throws -> [Float] {
        let bytes = data(for: tensor)
        let count = tensor.elementCount
        guard count > 0, let src = bytes.baseAddress else { return [] }
        return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try dequantize(tensor.type, src, count: count, into: buffer.baseAddress!)
            initialized = count
        }
    }
}
