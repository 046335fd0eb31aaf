import Testing
import TestSupport
import Tokenization

/// The default model's byte-level BPE tokenizer against Hugging Face `tokenizers` built from the
/// same vocabulary and merges (Python/bpe_reference.py).
@Suite struct ByteLevelBPETests {
    static let samples = [
        "The capital of France is Paris.",
        "Hello, world! How are you doing today?",
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
        "\tfor (int i = 0; i < 10; ++i) {\n\t\tprintf(\"%d\\n\", i);\n\t}",
        "12345", "3.14159 and 1,000,000 and 2024-11-23", "phone: +1 (555) 010-9999",
        "I love 🦙 and 🙂👍🏽 and 👨‍👩‍👧", "你好，世界！这是一个测试。", "日本語のテキスト", "한국어 텍스트",
        "a   b\n\n\tc", "   leading", "trailing   ", "\n\n\n", " ", "", "x\r\ny\r\n\r\nz",
        "don't I'll we've they're she'd it's", "DON'T I'LL", "'s 'S",
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<|im_end|><|im_end|>x<|endoftext|>",
        "naïve café résumé", "Ünïcödé ß ﬁ", "नमस्ते दुनिया", "مرحبا بالعالم", "Привет, мир!",
        "ⅫⅣ ½ ² ٣", "\u{00A0}non-breaking\u{2003}em space", "tabs\t\tand  spaces \t mixed",
        "!!!???...,,,;;;", "email@example.com https://example.com/path?q=1&r=2",
        "    indented\n        more\n", "CamelCaseIdentifier snake_case_identifier",
    ]

    func tokenizer(pre: String? = nil) throws -> Tokenizer {
        try DefaultModel.tokenizer(preTokenizer: pre)
    }

    func referenceIDs(pre: String, _ strings: [String]) throws -> [[Int32]] {
        try PythonReference.run("bpe_reference.py", [try DefaultModel.path, pre], input: strings, as: [[Int32]].self)
    }

    @Test("ids equal Hugging Face tokenizers' for each pre-tokenizer", arguments: ["smollm", "gpt2", "llama3", "qwen2"])
    func idsMatchReference(pre: String) throws {
        let tokenizer = try tokenizer(pre: pre)
        let expected = try referenceIDs(pre: pre, Self.samples)
        for (text, ids) in try paired(Self.samples, expected, reference: "bpe_reference.py \(pre)") {
            #expect(tokenizer.encode(text, addSpecial: false) == ids, "\(pre): \(text.debugDescription)")
        }
    }

    /// Seeded random strings over the characters where the pre-tokenizer patterns differ:
    /// spaces and newlines of each kind, apostrophes, digits, letters of several scripts,
    /// combining marks, punctuation, emoji.
    static func randomStrings(count: Int, seed: UInt64) -> [String] {
        let pool: [String] = [
            " ", " ", "  ", "\n", "\r\n", "\t", "\u{00A0}", "\u{3000}", "'", "'s", "'LL", "'d", "'t ", "'ve",
            "a", "B", "word", "Word", "x", "é", "ß", "ǅ", "ʰ", "1", "23", "4567", "٣", "½", "Ⅻ",
            ".", ",", "!", "?", "-", "_", "(", ")", "{", "}", "\"", "#", "…", "—", "€",
            "日", "本", "語", "한", "ก", "\u{0301}", "\u{0915}\u{094D}", "🦙", "👍🏽", "👨‍👩‍👧",
            "<|im_start|>", "<|im_end|>",
        ]
        var state = seed
        func next() -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int(truncatingIfNeeded: (z ^ (z >> 31)) >> 1)
        }
        return (0..<count).map { _ in (0..<(1 + next() % 24)).map { _ in pool[next() % pool.count] }.joined() }
    }

    @Test("random strings: ids equal Hugging Face tokenizers'", arguments: ["smollm", "gpt2", "llama3", "qwen2"])
    func randomStringsMatchReference(pre: String) throws {
        let tokenizer = try tokenizer(pre: pre)
        let strings = Self.randomStrings(count: 400, seed: 42)
        let expected = try referenceIDs(pre: pre, strings)
        for (text, ids) in try paired(strings, expected, reference: "bpe_reference.py \(pre)") {
            #expect(tokenizer.encode(text, addSpecial: false) == ids, "\(pre): \(text.debugDescription)")
            #expect(tokenizer.decode(ids) == text)
        }
    }

    @Test func knownIDs() throws {
        let tokenizer = try tokenizer()
        // Each digit alone (smollm), and the special tokens as single ids.
        #expect(tokenizer.encode("12345") == [33, 34, 35, 36, 37])
        #expect(tokenizer.encode("<|im_start|>user\nhi<|im_end|>").first == 1)
        #expect(tokenizer.encode("<|im_start|>user\nhi<|im_end|>").last == 2)
        // With special-token parsing off, the same text is plain text.
        #expect(!tokenizer.encode("<|im_start|>", parseSpecial: false).contains(1))
    }

    @Test func roundTrips() throws {
        let tokenizer = try tokenizer()
        for text in Self.samples {
            #expect(tokenizer.decode(tokenizer.encode(text)) == text)
        }
        #expect(tokenizer.decode(tokenizer.encode("<|im_start|>user\nhi<|im_end|>"), skipSpecial: true) == "user\nhi")
    }

    @Test func readsTheSameVocabularyAsTheGGUFPackage() throws {
        let fromGGUF = try TokenizerConfiguration(gguf: DefaultModel.file.get())
        let reference = try DefaultModel.metadata.get()
        #expect(fromGGUF.model == .gpt2)
        for (name, differing) in [("tokens", difference(fromGGUF.tokens, reference.tokens)),
                                  ("token types", difference(fromGGUF.tokenTypes, reference.tokenTypes)),
                                  ("merges", difference(fromGGUF.merges, reference.merges))] {
            #expect(differing == nil, "\(name): \(differing ?? "")")
        }
        #expect(!fromGGUF.tokens.isEmpty && !fromGGUF.merges.isEmpty)
        #expect(fromGGUF.preTokenizer == "smollm")
        #expect(fromGGUF.bosTokenID == reference.bos && fromGGUF.eosTokenID == reference.eos)
        #expect(fromGGUF.unknownTokenID == reference.unknown && fromGGUF.paddingTokenID == reference.padding)
        #expect(fromGGUF.addBOS == reference.addBOS)
    }

    @Test func vocabularyFacts() throws {
        let tokenizer = try tokenizer()
        #expect(tokenizer.vocabularySize == 49152)
        #expect(tokenizer.bosToken == 1)
        #expect(tokenizer.eosToken == 2)
        #expect(tokenizer.tokenID(for: "<|im_end|>") == 2)
        #expect(tokenizer.piece(for: 1) == "<|im_start|>")
        #expect(tokenizer.endOfGenerationTokens == [0, 2])
        #expect(!tokenizer.addsBOS)
    }

    @Test func incrementalDetokenizationNeverSplitsACharacter() throws {
        let tokenizer = try tokenizer()
        for text in ["🦙🙂👍🏽 emoji", "你好，世界！这是一个测试。", "naïve 👨‍👩‍👧 done"] {
            let ids = tokenizer.encode(text)
            var detokenizer = IncrementalDetokenizer(tokenizer: tokenizer)
            var pieces: [String] = []
            for id in ids { pieces.append(detokenizer.append(id)) }
            pieces.append(detokenizer.finish())
            #expect(pieces.joined() == text)
            #expect(pieces.allSatisfy { !$0.contains("\u{FFFD}") })
            // Some character here spans several tokens, so some step must have held bytes back.
            #expect(ids.contains { tokenizer.decode([$0]).contains("\u{FFFD}") })
        }
    }

    @Test func unfinishedCharacterAtTheEndBecomesReplacement() throws {
        let tokenizer = try tokenizer()
        let ids = tokenizer.encode("🦙")
        #expect(ids.count > 1)
        var detokenizer = IncrementalDetokenizer(tokenizer: tokenizer)
        #expect(detokenizer.append(ids[0]) == "")
        #expect(detokenizer.finish() == "\u{FFFD}")
    }

    @Test func unknownPreTokenizerIsAClearError() throws {
        let metadata = try DefaultModel.metadata.get()
        #expect(throws: TokenizerError.unsupportedPreTokenizer("deepseek-llm")) {
            try Tokenizer(configuration: metadata.configuration(preTokenizer: "deepseek-llm"))
        }
        #expect(TokenizerError.unsupportedPreTokenizer("x").description
            == "tokenizer: unsupported pre-tokenizer 'x' (supported: default, gpt2, smollm, llama-bpe, llama3, qwen2)")
    }
}
