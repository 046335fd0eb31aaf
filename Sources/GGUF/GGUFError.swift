/// Everything that can be wrong with a GGUF file or with a question asked of it. The
/// messages name the file part, key or tensor at fault; tests check them word for word.
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    /// The file ends before `what` (at byte `offset`) could be read.
    case truncated(what: String, offset: Int, needed: Int, available: Int)
    case badMagic([UInt8])
    case unsupportedVersion(UInt32)
    case unknownValueType(UInt32, key: String)
    case invalidString(what: String, offset: Int)
    case nestingTooDeep(key: String)
    case duplicateKey(String)
    case badAlignment(UInt64)
    case tooManyDimensions(tensor: String, dimensions: UInt32)
    case invalidShape(tensor: String, shape: [UInt64])
    case unknownTensorType(UInt32, tensor: String)
    case partialBlock(tensor: String, type: GGMLType, rowLength: Int)
    case misalignedTensor(tensor: String, offset: UInt64, alignment: Int)
    case tensorOutOfBounds(tensor: String, offset: UInt64, byteCount: Int, dataSize: Int)
    case duplicateTensor(String)
    case missingTensor(String)
    case missingKey(String)
    case wrongType(key: String, expected: String, actual: String)
    case unsupportedTensorType(GGMLType)
    case notWholeBlocks(type: GGMLType, count: Int, unit: String)
    /// Raised by the tests' GGUF writer (Tests/GGUFTestSupport).
    case invalidWrite(String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            "cannot open GGUF file '\(path)': \(reason)"
        case .truncated(let what, let offset, let needed, let available):
            "truncated GGUF file: \(what) at byte \(offset) needs \(needed) bytes, only \(available) left"
        case .badMagic(let bytes):
            "not a GGUF file: magic is \(bytes.map { hex($0) }.joined(separator: " ")), expected 47 47 55 46 (\"GGUF\")"
        case .unsupportedVersion(let version):
            "unsupported GGUF version \(version) (supported: 2, 3)"
        case .unknownValueType(let type, let key):
            "unknown metadata value type \(type) for key '\(key)'"
        case .invalidString(let what, let offset):
            "invalid UTF-8 in \(what) at byte \(offset)"
        case .nestingTooDeep(let key):
            "metadata key '\(key)' nests arrays deeper than \(GGUFParser.maxArrayNesting) levels"
        case .duplicateKey(let key):
            "metadata key '\(key)' appears twice"
        case .badAlignment(let alignment):
            "general.alignment is \(alignment), must be a power of two"
        case .tooManyDimensions(let tensor, let dimensions):
            "tensor '\(tensor)' has \(dimensions) dimensions, at most 4 are allowed"
        case .invalidShape(let tensor, let shape):
            "tensor '\(tensor)' has an invalid shape \(shape)"
        case .unknownTensorType(let type, let tensor):
            "tensor '\(tensor)' has unknown type \(type)"
        case .partialBlock(let tensor, let type, let rowLength):
            "tensor '\(tensor)': row length \(rowLength) is not a multiple of the \(type) block size \(type.blockSize)"
        case .misalignedTensor(let tensor, let offset, let alignment):
            "tensor '\(tensor)': data offset \(offset) is not a multiple of the alignment \(alignment)"
        case .tensorOutOfBounds(let tensor, let offset, let byteCount, let dataSize):
            "tensor '\(tensor)': data at offset \(offset) with \(byteCount) bytes ends past the data section (\(dataSize) bytes)"
        case .duplicateTensor(let name):
            "tensor '\(name)' appears twice in the tensor table"
        case .missingTensor(let name):
            "missing tensor '\(name)'"
        case .missingKey(let key):
            "missing metadata key '\(key)'"
        case .wrongType(let key, let expected, let actual):
            "metadata key '\(key)' is \(actual), expected \(expected)"
        case .unsupportedTensorType(let type):
            "tensor type \(type) is not supported (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)"
        case .notWholeBlocks(let type, let count, let unit):
            "\(count) \(unit) are not a whole number of \(type) blocks (\(type.blockSize) elements, \(type.bytesPerBlock) bytes each)"
        case .invalidWrite(let reason):
            "cannot write GGUF: \(reason)"
        }
    }
}

private func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
}
