import ModelStore
import TestSupport
import Foundation
import GGUF
import Testing
import Tokenization
import ServingBenchmark

/// The default model's tokenizer, loaded once for the dataset tests.
let defaultTokenizer: Result<Tokenizer, any Error> = Result { try Tokenizer(gguf: GGUFFile(path: requireModel(at: DefaultModel.path()))) }

@Suite struct RandomDatasetTests {
    @Test func promptsHaveExactlyTheDrawnTokenCount() throws {
        let tokenizer = try defaultTokenizer.get()
        let prompts = try RandomDataset.make(count: 40, inputLength: 100, outputLength: 50, rangeRatio: 0.5,
                                             tokenizer: tokenizer, seed: 1)
        #expect(prompts.count == 40)
        for prompt in prompts {
            #expect((50...150).contains(prompt.promptTokens))
            #expect((25...75).contains(prompt.outputTokens))
            #expect(tokenizer.encode(prompt.text, addSpecial: false, parseSpecial: true).count == prompt.promptTokens)
        }
        #expect(Set(prompts.map(\.promptTokens)).count > 10, "lengths are drawn, not constant")
    }

    @Test func aZeroRangeRatioGivesTheExactLengths() throws {
        let tokenizer = try defaultTokenizer.get()
        let prompts = try RandomDataset.make(count: 8, inputLength: 256, outputLength: 128, rangeRatio: 0,
                                             tokenizer: tokenizer, seed: 0)
        for prompt in prompts {
            #expect(prompt.promptTokens == 256 && prompt.outputTokens == 128)
            #expect(tokenizer.encode(prompt.text, addSpecial: false, parseSpecial: true).count == 256)
        }
        #expect(Set(prompts.map(\.text)).count == 8, "every prompt is different")
    }

    @Test func theSeedDecidesThePrompts() throws {
        let tokenizer = try defaultTokenizer.get()
        func make(_ seed: UInt64) throws -> [BenchmarkPrompt] {
            try RandomDataset.make(count: 4, inputLength: 32, outputLength: 8, rangeRatio: 0.25, tokenizer: tokenizer, seed: seed)
        }
        #expect(try make(5) == make(5))
        #expect(try make(5) != make(6))
    }

    @Test func severalInputLengthsSplitThePromptsEvenlyInAShuffledOrder() throws {
        let tokenizer = try defaultTokenizer.get()
        let prompts = try RandomDataset.make(count: 9, inputLengths: [6, 40], outputLength: 4, rangeRatio: 0,
                                             tokenizer: tokenizer, seed: 2)
        let lengths = prompts.map(\.promptTokens)
        #expect(lengths.filter { $0 == 6 }.count == 5 && lengths.filter { $0 == 40 }.count == 4)
        #expect(lengths != lengths.sorted() && lengths != lengths.sorted(by: >), "\(lengths)")
        for prompt in prompts {
            #expect(tokenizer.encode(prompt.text, addSpecial: false, parseSpecial: true).count == prompt.promptTokens)
        }
        #expect(try RandomDataset.make(count: 9, inputLengths: [6, 40], outputLength: 4, rangeRatio: 0,
                                       tokenizer: tokenizer, seed: 2) == prompts)
    }

    @Test func oneTokenPrompts() throws {
        let tokenizer = try defaultTokenizer.get()
        for prompt in try RandomDataset.make(count: 20, inputLength: 1, outputLength: 1, rangeRatio: 0,
                                             tokenizer: tokenizer, seed: 9) {
            #expect(tokenizer.encode(prompt.text, addSpecial: false, parseSpecial: true).count == 1)
        }
    }
}

@Suite struct ShareGPTDatasetTests {
    func file(_ contents: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sharegpt-\(UUID().uuidString).json").path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func conversation(_ prompt: String, _ reply: String) -> String {
        #"{"id": "x", "conversations": [{"from": "human", "value": "\#(prompt)"}, {"from": "gpt", "value": "\#(reply)"}]}"#
    }

    @Test func usableConversationsBecomePromptsWithTheReplyLengthAsOutput() throws {
        let tokenizer = try defaultTokenizer.get()
        let path = try file("[" + [
            conversation("Tell me about the history of the city of Paris.", "Paris was founded by the Parisii tribe long ago."),
            conversation("Hi", "Hello there, how can I help you today?"),  // prompt under 4 tokens: skipped
            #"{"conversations": [{"from": "human", "value": "only one turn here, no reply"}]}"#,  // skipped
            conversation("What is the boiling point of water at sea level?", "It is one hundred degrees Celsius."),
        ].joined(separator: ",") + "]")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let prompts = try ShareGPTDataset.load(path: path, count: 2, outputLength: nil, tokenizer: tokenizer, seed: 0)
        #expect(Set(prompts.map(\.text)) == ["Tell me about the history of the city of Paris.",
                                             "What is the boiling point of water at sea level?"])
        for prompt in prompts {
            #expect(prompt.promptTokens == tokenizer.encode(prompt.text, addSpecial: false).count)
        }
        let paris = try #require(prompts.first { $0.text.contains("Paris") })
        #expect(paris.outputTokens == tokenizer.encode("Paris was founded by the Parisii tribe long ago.", addSpecial: false).count)

        let fixed = try ShareGPTDataset.load(path: path, count: 1, outputLength: 77, tokenizer: tokenizer, seed: 0)
        #expect(fixed.map(\.outputTokens) == [77])
        #expect(throws: DatasetError("dataset \(path) has 2 usable conversations, fewer than --num-prompts 3")) {
            try ShareGPTDataset.load(path: path, count: 3, outputLength: nil, tokenizer: tokenizer, seed: 0)
        }
    }

    @Test func badFilesAreRefusedWithTheReason() throws {
        let missing = "/nonexistent/sharegpt.json"
        #expect(throws: DatasetError("dataset file not found: \(missing)")) {
            try ShareGPTDataset.conversations(path: missing)
        }
        let cases: [(String, (String) -> String)] = [
            ("[{\"conversations\": [", { "dataset \($0) is not valid JSON" }),
            (#"{"conversations": []}"#, { "dataset \($0): expected a JSON list of conversations at the top level" }),
            (#"[{"id": 1}]"#, { "dataset \($0): entry 0 has no \"conversations\" list" }),
            ("[" + conversation("a b c d e", "f g h i j") + #", {"conversations": [{"from": "human"}]}]"#,
             { "dataset \($0): entry 1, turn 0 has no string \"value\"" }),
            (#"[{"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": 3}]}]"#,
             { "dataset \($0): entry 0, turn 1 has no string \"value\"" }),
            (#"[{"conversations": [{"from": "human", "value": "lonely"}]}]"#,
             { "dataset \($0) has no conversation with two turns (a prompt and a reply)" }),
            ("[]", { "dataset \($0) has no conversation with two turns (a prompt and a reply)" }),
        ]
        for (contents, message) in cases {
            let path = try file(contents)
            defer { try? FileManager.default.removeItem(atPath: path) }
            #expect(throws: DatasetError(message(path)), "\(contents)") { try ShareGPTDataset.conversations(path: path) }
        }
    }
}
