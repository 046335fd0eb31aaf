import GGUF

/// A weight matrix as stored in the GGUF file: `rows` output features, each a row of
/// `columns` input features in `type` (quantized blocks along the row). The bytes are a view
/// into the memory-mapped file, never a copy.
public struct WeightMatrix: @unchecked Sendable {
    // @unchecked: `data` points into a read-only mapping owned by the ModelWeights that made
    // this value; nothing ever writes through it.
    public let name: String
    public let type: GGMLType
    public let data: UnsafeRawPointer
    public let rows: Int
    public let columns: Int
}
