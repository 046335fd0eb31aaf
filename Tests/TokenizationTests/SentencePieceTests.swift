import Foundation
import Testing
import TestSupport
import Tokenization

/// The SentencePiece (`llama`) path against the `sentencepiece` library itself: a small BPE
/// model with byte fallback is trained on a fixed corpus, and both encode the same strings.
struct SentencePieceTests {
    struct Request: Encodable {
        var corpus: [String]
        var strings: [String]
        var vocab_size: Int
    }

    struct Reference: Decodable {
        var pieces: [String]
        var scores: [Float]
        var types: [Int32]
        var ids: [[Int32]]
        var decoded: [String]
    }

    static let corpus: [String] = {
        let sentences = [
            "The quick brown fox jumps over the lazy dog.",
            "Tokenizers split text into pieces; merges join the most likely pairs first.",
            "A language model predicts the next token from the previous ones.",
            "Hello world! Hello again, world. The world says hello.",
            "Numbers like 42, 1999 and 3.14 appear in text too.",
            "def main():\n    print('hello')\n    return 0",
            "Paris is the capital of France, and Berlin is the capital of Germany.",
            "She said: \"it's fine\" — and then she left.",
        ]
        return (0..<40).flatMap { i in sentences.map { $0 + (i % 3 == 0 ? "" : " \(i)") } }
    }()

    static let strings = [
        "Hello world", "The capital of France is", "  two leading spaces", "trailing ",
        "tokens and merges", "numbers 12345 and 3.14", "def f():\n    return 1",
        "unseen: 🦙 日本 ß", "mixed\ttabs\nnewlines", "x", "",
    ] + ByteLevelBPETests.randomStrings(count: 200, seed: 7).map { $0.replacingOccurrences(of: "<|im_", with: "<") }

    func reference() throws -> Reference {
        let workdir = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-spm-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: workdir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: workdir) }
        return try PythonReference.run(
            "spm_reference.py", [workdir.path],
            input: Request(corpus: Self.corpus, strings: Self.strings, vocab_size: 600), as: Reference.self)
    }

    func tokenizer(_ reference: Reference) throws -> Tokenizer {
        try Tokenizer(configuration: TokenizerConfiguration(
            model: .llama, tokens: reference.pieces, tokenTypes: reference.types, scores: reference.scores,
            bosTokenID: 1, eosTokenID: 2, unknownTokenID: 0))
    }

    @Test func idsMatchSentencePiece() throws {
        let reference = try reference()
        let tokenizer = try tokenizer(reference)
        for (text, ids) in try paired(Self.strings, reference.ids, reference: "spm_reference.py") {
            #expect(tokenizer.encode(text, addSpecial: false) == ids, "\(text.debugDescription)")
        }
    }

    @Test func byteFallbackAndRoundTrips() throws {
        let reference = try reference()
        let tokenizer = try tokenizer(reference)
        // The llama is not in the corpus: its four UTF-8 bytes become <0xF0> <0x9F> <0xA6> <0x99>.
        let ids = tokenizer.encode("🦙", addSpecial: false)
        #expect(ids.suffix(4).map { tokenizer.piece(for: $0) } == ["<0xF0>", "<0x9F>", "<0xA6>", "<0x99>"])
        for (text, decoded) in try paired(Self.strings, reference.decoded, reference: "spm_reference.py") {
            #expect(tokenizer.decode(tokenizer.encode(text, addSpecial: false)) == decoded)
            #expect(tokenizer.decode(tokenizer.encode(text), skipSpecial: true) == text)
        }
        #expect(tokenizer.encode("Hello").first == 1)
        #expect(tokenizer.addsBOS)
    }

    @Test func incrementalDetokenizationOfByteFallback() throws {
        let tokenizer = try tokenizer(try reference())
        var detokenizer = IncrementalDetokenizer(tokenizer: tokenizer, skipSpecial: true, startsText: true)
        var pieces: [String] = []
        for id in tokenizer.encode("a 🦙 b") { pieces.append(detokenizer.append(id)) }
        pieces.append(detokenizer.finish())
        #expect(pieces.joined() == "a 🦙 b")
        #expect(pieces.contains("") && pieces.contains { $0.contains("🦙") })

        // A continuation keeps the space that starts its first token.
        var continuation = IncrementalDetokenizer(tokenizer: tokenizer)
        let text = tokenizer.encode("Hello world", addSpecial: false).map { continuation.append($0) }.joined()
        #expect(text + continuation.finish() == " Hello world")
    }

    @Test func specialTokensInTextAndTheSpacePrefix() throws {
        let tokenizer = try tokenizer(try reference())
        // `</s>` (a control token) written in the text is one token; the text after it gets
        // SentencePiece's space prefix again, as in llama.cpp.
        let ids = tokenizer.encode("Hello</s>world", addSpecial: false)
        let eosPosition = try #require(ids.firstIndex(of: 2))
        #expect(ids[..<eosPosition] == tokenizer.encode("Hello", addSpecial: false)[...])
        #expect(ids[(eosPosition + 1)...] == tokenizer.encode("world", addSpecial: false)[...])
        #expect(tokenizer.endOfGenerationTokens == [2])
    }

    @Test func missingScoresAreAClearError() {
        #expect(throws: TokenizerError.inconsistentVocabulary("a llama (SentencePiece) vocabulary needs one score per token")) {
            try Tokenizer(configuration: TokenizerConfiguration(model: .llama, tokens: ["<unk>", "a"]))
        }
    }
}
