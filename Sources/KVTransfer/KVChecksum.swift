/// The checksum of every KV transfer: a Fletcher-style sum over 64-bit words in four lanes
/// (position-dependent, so reordered or shifted data changes it; fast enough to run at memory
/// speed on both ends). Bytes not a multiple of 32 are folded in at the end.
public struct KVChecksum: Sendable {
    private var a: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var b: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var tail: UInt64 = 0
    private var length: UInt64 = 0

    public init() {}

    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let words = bytes.count / 32
        var (a0, a1, a2, a3) = a
        var (b0, b1, b2, b3) = b
        for i in 0..<words {
            let p = base + i * 32
            a0 &+= p.loadUnaligned(fromByteOffset: 0, as: UInt64.self); b0 &+= a0
            a1 &+= p.loadUnaligned(fromByteOffset: 8, as: UInt64.self); b1 &+= a1
            a2 &+= p.loadUnaligned(fromByteOffset: 16, as: UInt64.self); b2 &+= a2
            a3 &+= p.loadUnaligned(fromByteOffset: 24, as: UInt64.self); b3 &+= a3
        }
        a = (a0, a1, a2, a3)
        b = (b0, b1, b2, b3)
        for i in (words * 32)..<bytes.count {
            tail = (tail ^ UInt64(bytes[i])) &* 0x100_0000_01b3
        }
        length &+= UInt64(bytes.count)
    }

    public var value: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ length
        for v in [a.0, a.1, a.2, a.3, b.0, b.1, b.2, b.3, tail] {
            h = (h ^ v) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
        }
        return h
    }

    /// The checksum of `chunks` in order.
    public static func of(_ chunks: [UnsafeRawBufferPointer]) -> UInt64 {
        var sum = KVChecksum()
        for chunk in chunks { sum.add(chunk) }
        return sum.value
    }
}
