/// The P ↔ D stream format, on the PD-comm port (control) and the cache-queue port (KV data):
/// a sequence of frames, each a fixed 16-byte header then `length` payload bytes.
/// Header, little-endian: magic "TKPD" (4), version (1), kind (1), reserved (2), length (8).
/// Control messages carry JSON (`PDHello`, `PDReservation`, ...); KV frames carry a binary
/// `KVWriteHeader` and, over tcp, the blocks' bytes.
public struct PDFrameHeader: Hashable, Sendable {
    public static let size = 16
    public static let magic: UInt32 = 0x4450_4B54  // "TKPD" read as little-endian
    /// 2: `prefillWaiting`, `prefillStarted` and `prefillRunning` (D's deadline bounds P's silence).
    public static let version: UInt8 = 2
    /// Larger payloads are refused (no frame may make a peer allocate without limit).
    public static let maxControlPayload = 1 << 24

    public enum Kind: UInt8, Sendable, CaseIterable {
        case hello = 1, reservation, failure, attach, kvData, kvWritten, ack, firstToken, done, prefillWaiting, prefillStarted, prefillRunning
    }

    public var kind: Kind
    public var length: UInt64

    public init(kind: Kind, length: UInt64) {
        self.kind = kind
        self.length = length
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.size)
        out.appendLittleEndian(Self.magic)
        out.append(Self.version)
        out.append(kind.rawValue)
        out.append(contentsOf: [0, 0])
        out.appendLittleEndian(length)
        return out
    }

    public struct DecodingError: Error, Equatable, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public init(decoding bytes: some Collection<UInt8>) throws(DecodingError) {
        let b = Array(bytes)
        guard b.count == Self.size else { throw DecodingError(description: "a frame header is \(Self.size) bytes, got \(b.count)") }
        let magic = b.readLittleEndian(UInt32.self, at: 0)
        guard magic == Self.magic else { throw DecodingError(description: "not a Tandem PD frame (magic 0x\(String(magic, radix: 16)))") }
        guard b[4] == Self.version else { throw DecodingError(description: "PD frame version \(b[4]) is not supported (this side speaks \(Self.version))") }
        guard let kind = Kind(rawValue: b[5]) else { throw DecodingError(description: "unknown PD frame kind \(b[5])") }
        self.kind = kind
        length = b.readLittleEndian(UInt64.self, at: 8)
    }
}

/// What one KV frame writes: one layer's blocks, their bytes each, and the checksum of all of
/// them in order (`KVChecksum`). Over tcp the bytes follow this header in the same frame.
/// Binary, little-endian: layer (4), block count (4), bytes per block (8), checksum (8), ids (4 each).
public struct KVWriteHeader: Hashable, Sendable {
    public static let fixedSize = 24
    public var layer: Int
    public var blockIDs: [Int32]
    public var bytesPerBlock: Int
    public var checksum: UInt64

    public init(layer: Int, blockIDs: [Int32], bytesPerBlock: Int, checksum: UInt64) {
        self.layer = layer
        self.blockIDs = blockIDs
        self.bytesPerBlock = bytesPerBlock
        self.checksum = checksum
    }

    public var encodedSize: Int { Self.fixedSize + 4 * blockIDs.count }
    public var dataBytes: Int { blockIDs.count * bytesPerBlock }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(encodedSize)
        out.appendLittleEndian(UInt32(layer))
        out.appendLittleEndian(UInt32(blockIDs.count))
        out.appendLittleEndian(UInt64(bytesPerBlock))
        out.appendLittleEndian(checksum)
        for id in blockIDs { out.appendLittleEndian(UInt32(bitPattern: id)) }
        return out
    }

    /// Reads the fixed part; `blockCount` ids follow.
    public static func decodeFixed(_ bytes: [UInt8]) throws(PDFrameHeader.DecodingError) -> (layer: Int, blockCount: Int, bytesPerBlock: Int, checksum: UInt64) {
        guard bytes.count >= fixedSize else {
            throw PDFrameHeader.DecodingError(description: "a KV write header is at least \(fixedSize) bytes, got \(bytes.count)")
        }
        return (Int(bytes.readLittleEndian(UInt32.self, at: 0)), Int(bytes.readLittleEndian(UInt32.self, at: 4)),
                Int(truncatingIfNeeded: bytes.readLittleEndian(UInt64.self, at: 8)), bytes.readLittleEndian(UInt64.self, at: 16))
    }

    public init(decoding bytes: [UInt8]) throws(PDFrameHeader.DecodingError) {
        let fixed = try Self.decodeFixed(bytes)
        guard bytes.count == Self.fixedSize + 4 * fixed.blockCount else {
            throw PDFrameHeader.DecodingError(description: "a KV write header of \(fixed.blockCount) blocks is \(Self.fixedSize + 4 * fixed.blockCount) bytes, got \(bytes.count)")
        }
        layer = fixed.layer
        bytesPerBlock = fixed.bytesPerBlock
        checksum = fixed.checksum
        blockIDs = (0..<fixed.blockCount).map { Int32(bitPattern: bytes.readLittleEndian(UInt32.self, at: Self.fixedSize + 4 * $0)) }
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    func readLittleEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size { value |= T(self[offset + i]) << (8 * i) }
        return value
    }
}
