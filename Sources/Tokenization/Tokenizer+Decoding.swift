extension Tokenizer {
    /// The text of `ids`. `skipSpecial` leaves out control tokens (bos, eos, `<|im_end|>`...).
    /// Bytes that do not form valid UTF-8 become U+FFFD.
    public func decode(_ ids: [Int32], skipSpecial: Bool = false) -> String {
        var bytes: [UInt8] = []
        var atStart = true
        for id in ids { appendBytes(of: id, skipSpecial: skipSpecial, atStart: &atStart, to: &bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the bytes of one token. `atStart` tracks whether text has begun, since
    /// SentencePiece's dummy prefix space is dropped from the first text token.
    func appendBytes(of id: Int32, skipSpecial: Bool, atStart: inout Bool, to bytes: inout [UInt8]) {
        guard id >= 0, Int(id) < pieceBytes.count else { return }
        if skipSpecial && isControl(id) { return }
        var piece = pieceBytes[Int(id)][...]
        if atStart, !isControl(id), !piece.isEmpty {
            if addSpacePrefix, piece.first == 0x20 { piece = piece.dropFirst() }
            atStart = false
        }
        bytes.append(contentsOf: piece)
    }
}
