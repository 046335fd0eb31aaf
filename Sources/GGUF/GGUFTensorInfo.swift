/// One entry of a GGUF file's tensor table.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Dimensions in ggml order: `shape[0]` (ne0) is the row length, the fastest-varying one.
    public let shape: [Int]
    public let type: GGMLType
    /// Offset of the tensor's data from the start of the file's data section.
    public let offset: Int
    public let byteCount: Int

    public init(name: String, shape: [Int], type: GGMLType, offset: Int, byteCount: Int) {
        self.name = name
        self.shape = shape
        self.type = type
        self.offset = offset
        self.byteCount = byteCount
    }

    public var elementCount: Int { shape.reduce(1, *) }
    /// Elements per row (ne0).
    public var rowLength: Int { shape.first ?? 1 }
    /// Number of rows: the product of every dimension but the first.
    public var rowCount: Int { shape.dropFirst().reduce(1, *) }
    public var bytesPerRow: Int { type.byteCount(elements: rowLength) }
}
