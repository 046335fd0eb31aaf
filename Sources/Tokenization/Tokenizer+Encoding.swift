extension Tokenizer {
    /// The token ids of `text`. `addSpecial` adds bos/eos as the vocabulary asks;
    /// `parseSpecial` turns special tokens written in the text (`<|im_start|>`) into their ids
    /// (off: they are tokenized as plain text, as untrusted user input should be).
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = true) -> [Int32] {
        let bytes = Array(text.utf8)
        var output: [Int32] = []
        output.reserveCapacity(bytes.count / 3 + 2)
        if addSpecial, addsBOS, let bos = bosToken { output.append(bos) }
        let segments = parseSpecial ? specialTokens.segments(of: bytes) : (bytes.isEmpty ? [] : [.text(0..<bytes.count)])
        var previousWasSpecial = true
        for segment in segments {
            switch segment {
            case .special(let id):
                output.append(id)
                previousWasSpecial = true
            case .text(let range):
                switch encoder {
                case .byteLevel(let bpe, let preTokenizer, let wholeWordIDs):
                    encodeByteLevel(bytes[range], bpe, preTokenizer, wholeWordIDs, into: &output)
                case .sentencePiece(let spm):
                    // SentencePiece's dummy prefix: a space before text that starts the input or
                    // follows a special token (llama.cpp's rule).
                    var escaped: [UInt8] = addSpacePrefix && previousWasSpecial ? Self.escapedSpace : []
                    escaped.reserveCapacity(range.count + 8)
                    for byte in bytes[range] {
                        if byte == 0x20 { escaped.append(contentsOf: Self.escapedSpace) } else { escaped.append(byte) }
                    }
                    spm.encode(escaped, into: &output)
                }
                previousWasSpecial = false
            }
        }
        if addSpecial, addsEOS, let eos = eosToken { output.append(eos) }
        return output
    }

    /// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space.
    static let escapedSpace: [UInt8] = [0xE2, 0x96, 0x81]

    private func encodeByteLevel(
        _ bytes: ArraySlice<UInt8>, _ bpe: ByteLevelBPE, _ preTokenizer: PreTokenizer,
        _ wholeWordIDs: [[UInt8]: Int32], into output: inout [Int32]
    ) {
        // Scalars and where each starts in `bytes`, so words map back to byte ranges.
        var scalars: [Unicode.Scalar] = []
        var offsets: [Int] = []
        scalars.reserveCapacity(bytes.count)
        offsets.reserveCapacity(bytes.count + 1)
        var offset = bytes.startIndex
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            scalars.append(scalar)
            offsets.append(offset)
            offset += UTF8.width(scalar)
        }
        offsets.append(offset)
        var scratch = ByteLevelBPE.Scratch()
        preTokenizer.split(scalars) { word in
            let wordBytes = bytes[offsets[word.lowerBound]..<offsets[word.upperBound]]
            if !wholeWordIDs.isEmpty, let id = wholeWordIDs[Array(wordBytes)] {
                output.append(id)
            } else {
                bpe.encode(word: wordBytes, into: &output, scratch: &scratch)
            }
        }
    }
}
