/// The merge ranks of a byte-level BPE vocabulary: (left id, right id) -> rank and merged id,
/// in an open-addressing hash table with a multiplicative hash. Looked up for every adjacent
/// pair of every word, so it avoids the general Dictionary's SipHash.
struct MergeTable: Sendable {
    struct Merge: Sendable {
        var rank: Int32
        var result: Int32
    }

    /// All bits set: no pair of non-negative ids packs to this.
    private static let empty = UInt64.max
    private var keys: [UInt64]
    private var merges: [Merge]
    private let shift: UInt64
    private let mask: Int

    init(capacityFor count: Int) {
        var bits = 4
        while (1 << bits) < count * 2 { bits += 1 }
        keys = [UInt64](repeating: Self.empty, count: 1 << bits)
        merges = [Merge](repeating: Merge(rank: 0, result: 0), count: 1 << bits)
        shift = UInt64(64 - bits)
        mask = (1 << bits) - 1
    }

    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    private func slot(for key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// Adds a merge unless the pair already has one (the first, best-ranked, wins).
    mutating func insert(_ left: Int32, _ right: Int32, _ merge: Merge) {
        let key = Self.key(left, right)
        var i = slot(for: key)
        while keys[i] != Self.empty {
            if keys[i] == key { return }
            i = (i + 1) & mask
        }
        keys[i] = key
        merges[i] = merge
    }

    func lookup(_ left: Int32, _ right: Int32) -> Merge? {
        let key = Self.key(left, right)
        var i = slot(for: key)
        while true {
            let k = keys[i]
            if k == key { return merges[i] }
            if k == Self.empty { return nil }
            i = (i + 1) & mask
        }
    }
}
