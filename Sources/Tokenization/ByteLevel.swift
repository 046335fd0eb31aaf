/// GPT-2's byte-level alphabet: every byte is shown as a printable scalar so that BPE pieces
/// are strings. Printable Latin-1 bytes map to themselves; the rest to U+0100 upwards in order.
enum ByteLevel {
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    static let byteForScalar: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (byte, scalar) in scalarForByte.enumerated() { map[scalar.value] = UInt8(byte) }
        return map
    }()

    /// The bytes a byte-level piece stands for; nil if it holds a scalar outside the alphabet.
    static func bytes(ofPiece piece: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(piece.utf8.count)
        for scalar in piece.unicodeScalars {
            guard let byte = byteForScalar[scalar.value] else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    static func piece(ofBytes bytes: some Sequence<UInt8>) -> String {
        var piece = String.UnicodeScalarView()
        for byte in bytes { piece.append(scalarForByte[Int(byte)]) }
        return String(piece)
    }
}
