import Foundation
import GGUF
import Testing
import TestSupport
import Tokenization
import GGUFTestSupport

/// Tokenizers read from GGUF files written here with GGUFWriter, and the errors for bad ones.
struct TokenizerGGUFTests {
    func withFile(_ metadata: [(String, GGUFValue)], _ body: (GGUFFile) throws -> Void) throws {
        var writer = GGUFWriter()
        writer.add("general.architecture", .string("llama"))
        for (key, value) in metadata { writer.add(key, value) }
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("tandem-tokenizer-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).gguf").path
        try writer.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try body(try GGUFFile(path: path))
    }

    @Test func sentencePieceVocabularyFromAGGUFFile() throws {
        let reference = try SentencePieceTests().reference()
        let metadata: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.tokens", .array(reference.pieces.map { .string($0) })),
            ("tokenizer.ggml.scores", .array(reference.scores.map { .float32($0) })),
            ("tokenizer.ggml.token_type", .array(reference.types.map { .int32($0) })),
            ("tokenizer.ggml.bos_token_id", .uint32(1)),
            ("tokenizer.ggml.eos_token_id", .uint32(2)),
            ("tokenizer.ggml.unknown_token_id", .uint32(0)),
            ("tokenizer.chat_template", .string("{{ bos_token }}{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}")),
        ]
        try withFile(metadata) { file in
            let tokenizer = try Tokenizer(gguf: file)
            #expect(tokenizer.model == .llama && tokenizer.addsBOS && tokenizer.bosToken == 1)
            for (text, ids) in try paired(SentencePieceTests.strings, reference.ids, reference: "spm_reference.py") {
                #expect(tokenizer.encode(text) == [1] + ids)
            }
            let template = try #require(try ChatTemplate.fromGGUF(file))
            #expect(try template.render(messages: [ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true, bosToken: "<s>")
                == "<s>[INST] hi [/INST]")
        }
    }

    @Test func missingOrMistypedKeysAreNamed() throws {
        try withFile([("tokenizer.ggml.model", .string("gpt2"))]) { file in
            #expect(throws: TokenizerError.missingMetadata("tokenizer.ggml.tokens")) { try Tokenizer(gguf: file) }
        }
        #expect(TokenizerError.missingMetadata("tokenizer.ggml.tokens").description
            == "tokenizer: the GGUF file has no 'tokenizer.ggml.tokens'")
        try withFile([("tokenizer.ggml.model", .string("bert")), ("tokenizer.ggml.tokens", .array([.string("a")]))]) { file in
            #expect(throws: TokenizerError.unsupportedModel("bert")) { try Tokenizer(gguf: file) }
        }
        try withFile([("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.tokens", .array([.uint8(1)]))]) { file in
            let error = TokenizerError.wrongMetadataType(key: "tokenizer.ggml.tokens", expected: "an array of strings", found: "array of uint8")
            #expect(throws: error) { try Tokenizer(gguf: file) }
            #expect(error.description == "tokenizer: 'tokenizer.ggml.tokens' in the GGUF file is array of uint8, expected an array of strings")
        }
        try withFile([
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.tokens", .array([.string("a")])),
            ("tokenizer.ggml.merges", .array([])), ("tokenizer.ggml.eos_token_id", .uint32(7)),
        ]) { file in
            #expect(throws: TokenizerError.inconsistentVocabulary("the eos token id 7 is outside the vocabulary of 1 tokens")) {
                try Tokenizer(gguf: file)
            }
        }
        try withFile([]) { file in
            let template = try ChatTemplate.fromGGUF(file)
            #expect(template == nil)
        }
    }
}
