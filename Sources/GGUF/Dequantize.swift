import CKernels

/// Decodes `count` elements of `type` (a whole number of blocks) at `src` into `dst`.
/// The C routine `tk_dequantize_row` does the work; the kernels reuse it directly.
public func dequantize(
    _ type: GGMLType, _ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>
) throws {
    guard type.isSupported else { throw GGUFError.unsupportedTensorType(type) }
    guard count % type.blockSize == 0 else {
        throw GGUFError.notWholeBlocks(type: type, count: count, unit: "elements")
    }
    let status = tk_dequantize_row(Int32(type.rawValue), src, dst, Int64(count))
    precondition(status == 0, "tk_dequantize_row rejected supported type \(type)")
}

/// Decodes a whole number of blocks of `type` from `bytes`.
public func dequantize(_ type: GGMLType, _ bytes: [UInt8]) throws -> [Float] {
    guard type.isSupported else { throw GGUFError.unsupportedTensorType(type) }
    guard bytes.count % type.bytesPerBlock == 0 else {
        throw GGUFError.notWholeBlocks(type: type, count: bytes.count, unit: "bytes")
    }
    let count = bytes.count / type.bytesPerBlock * type.blockSize
    return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        if count > 0 {
            try bytes.withUnsafeBytes { try dequantize(type, $0.baseAddress!, count: count, into: buffer.baseAddress!) }
        }
        initialized = count
    }
}
