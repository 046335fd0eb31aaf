/// The checksum of every KV transfer: a Fletcher-style sum over 64-bit words in eight lanes
/// (position-dependent, so reordered or shifted data changes it; SIMD adds only, so it runs
/// at memory speed on both ends). Bytes not a multiple of 64 are folded in at the end.
public struct KVChecksum: Sendable {
    private var a0 = SIMD4<UInt64>(), a1 = SIMD4<UInt64>()
    private var b0 = SIMD4<UInt64>(), b1 = SIMD4<UInt64>()
    private var tail: UInt64 = 0
    private var length: UInt64 = 0

    public init() {}

    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let words = bytes.count / 64
        var (a0, a1, b0, b1) = (self.a0, self.a1, self.b0, self.b1)
        var p = base
        for _ in 0..<words {
            a0 &+= p.loadUnaligned(as: SIMD4<UInt64>.self)
            a1 &+= p.loadUnaligned(fromByteOffset: 32, as: SIMD4<UInt64>.self)
            b0 &+= a0
            b1 &+= a1
            p += 64
        }
        (self.a0, self.a1, self.b0, self.b1) = (a0, a1, b0, b1)
        for i in (words * 64)..<bytes.count {
            tail = (tail ^ UInt64(bytes[i])) &* 0x100_0000_01b3
        }
        length &+= UInt64(bytes.count)
    }

    public var value: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ length
        for lanes in [a0, a1, b0, b1] {
            for i in 0..<4 {
                h = (h ^ lanes[i]) &* 0x9E37_79B9_7F4A_7C15
                h ^= h >> 29
            }
        }
        h = (h ^ tail) &* 0x9E37_79B9_7F4A_7C15
        return h ^ (h >> 29)
    }

    /// The checksum of `chunks` in order.
    public static func of(_ chunks: [UnsafeRawBufferPointer]) -> UInt64 {
        var sum = KVChecksum()
        for chunk in chunks { sum.add(chunk) }
        return sum.value
    }
}
