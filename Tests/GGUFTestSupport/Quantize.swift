import CKernels
import GGUF

/// Encodes `values` as `type`: F32, F16 and BF16 (round to nearest even) and the simple
/// round-to-nearest quantizers Q8_0, Q4_0 and Q4_1 (as ggml's reference quantizers). Other
/// types have no quantizer here: use `GGMLType.randomData` to make valid blocks of them.
public func quantize(_ values: [Float], to type: GGMLType) throws -> [UInt8] {
    guard values.count % type.blockSize == 0 else {
        throw GGUFError.notWholeBlocks(type: type, count: values.count, unit: "elements")
    }
    var out: [UInt8] = []
    out.reserveCapacity(type.byteCount(elements: values.count))
    switch type {
    case .f32:
        for v in values { out.appendLE16or32(v.bitPattern) }
    case .f16:
        for v in values { out.appendLE16or32(tk_fp32_to_fp16(v)) }
    case .bf16:
        for v in values { out.appendLE16or32(tk_fp32_to_bf16(v)) }
    case .q8_0:
        for start in stride(from: 0, to: values.count, by: 32) {
            let block = values[start..<start + 32]
            let amax = block.map(abs).max()!
            let d = amax / 127
            let id: Float = d == 0 ? 0 : 1 / d
            out.appendLE16or32(tk_fp32_to_fp16(d))
            for v in block { out.append(UInt8(bitPattern: Int8((v * id).rounded()))) }
        }
    case .q4_0:
        for start in stride(from: 0, to: values.count, by: 32) {
            let block = Array(values[start..<start + 32])
            // The value of largest magnitude, with its sign, maps to -8.
            let extreme = block.max { abs($0) < abs($1) }!
            let d = extreme / -8
            let id: Float = d == 0 ? 0 : 1 / d
            out.appendLE16or32(tk_fp32_to_fp16(d))
            for j in 0..<16 {
                let lo = min(15, Int(block[j] * id + 8.5))
                let hi = min(15, Int(block[j + 16] * id + 8.5))
                out.append(UInt8(lo | hi << 4))
            }
        }
    case .q4_1:
        for start in stride(from: 0, to: values.count, by: 32) {
            let block = Array(values[start..<start + 32])
            let lowest = block.min()!, highest = block.max()!
            let d = (highest - lowest) / 15
            let id: Float = d == 0 ? 0 : 1 / d
            out.appendLE16or32(tk_fp32_to_fp16(d))
            out.appendLE16or32(tk_fp32_to_fp16(lowest))
            for j in 0..<16 {
                let lo = min(15, Int((block[j] - lowest) * id + 0.5))
                let hi = min(15, Int((block[j + 16] - lowest) * id + 0.5))
                out.append(UInt8(lo | hi << 4))
            }
        }
    default:
        throw GGUFError.invalidWrite("no quantizer for \(type) (quantizers: F32, F16, BF16, Q8_0, Q4_0, Q4_1)")
    }
    return out
}

extension [UInt8] {
    fileprivate mutating func appendLE16or32<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
