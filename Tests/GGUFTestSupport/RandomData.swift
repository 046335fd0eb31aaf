import CKernels
import GGUF

extension GGMLType {
    /// Random but valid data for `elements` elements (a whole number of blocks): random
    /// quants with finite fp16 scales chosen so decoded weights stay roughly within ±1.
    /// Float types get values in -1...1. Unsupported types get random bytes (their scale
    /// fields may decode to anything); they are only for testing rejection.
    public func randomData(elements: Int, using rng: inout some RandomNumberGenerator) -> [UInt8] {
        precondition(elements % blockSize == 0, "\(elements) elements are not whole \(self) blocks")
        let blocks = elements / blockSize
        switch self {
        case .f32:
            return quantizeFloats(elements, &rng) { $0.bitPattern }
        case .f16:
            return quantizeFloats(elements, &rng) { tk_fp32_to_fp16($0) }
        case .bf16:
            return quantizeFloats(elements, &rng) { tk_fp32_to_bf16($0) }
        default:
            break
        }
        var bytes = (0..<blocks * bytesPerBlock).map { _ in UInt8.random(in: 0...255, using: &rng) }
        // (offset of an fp16 field in the block, largest magnitude, may it be negative)
        let scales: [(offset: Int, limit: Float, signed: Bool)] = switch self {
        case .q4_0, .q5_0: [(0, 1.0 / 16, true)]
        case .q4_1: [(0, 1.0 / 15, true), (2, 1, true)]
        case .q5_1: [(0, 1.0 / 31, true), (2, 1, true)]
        case .q8_0: [(0, 1.0 / 127, true)]
        case .q4_K: [(0, 1.0 / (63 * 15), false), (2, 1.0 / 63, false)]
        case .q5_K: [(0, 1.0 / (63 * 31), false), (2, 1.0 / 63, false)]
        case .q6_K: [(208, 1.0 / (127 * 32), true)]
        default: []
        }
        for block in 0..<blocks {
            for scale in scales {
                var value = Float.random(in: 0.1...1, using: &rng) * scale.limit
                if scale.signed && Bool.random(using: &rng) { value = -value }
                let half = tk_fp32_to_fp16(value)
                bytes[block * bytesPerBlock + scale.offset] = UInt8(half & 0xff)
                bytes[block * bytesPerBlock + scale.offset + 1] = UInt8(half >> 8)
            }
        }
        return bytes
    }

    private func quantizeFloats<T: FixedWidthInteger>(
        _ count: Int, _ rng: inout some RandomNumberGenerator, _ encode: (Float) -> T
    ) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count * MemoryLayout<T>.size)
        for _ in 0..<count {
            withUnsafeBytes(of: encode(Float.random(in: -1...1, using: &rng)).littleEndian) {
                bytes.append(contentsOf: $0)
            }
        }
        return bytes
    }

}
