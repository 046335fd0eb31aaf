import Engine
import Foundation
import GGUF
import Testing
import Tokenization
import ModelStore

/// The real SmolLM2 file end to end: tokenizer, chat template, generation, the CLI.
@Suite(.serialized) struct RealModelGenerationTests {
    @Test func greedyCompletionOfTheCapitalOfFranceIsParis() throws {
        let generator = try Generator(modelPath: defaultModelPath(), threads: 2)
        let tokens = generator.tokens(forPrompt: "The capital of France is", rendered: false)
        #expect(tokens == [504, 3575, 282, 4649, 314])
        var streamed = ""
        let result = try generator.generate(promptTokens: tokens, maxTokens: 4, sampling: .greedy) { streamed += $0 }
        #expect(result.text.hasPrefix(" Paris"))
        #expect(streamed == result.text)
        #expect(result.tokens.count == 4)
        #expect(result.finishReason == .maxTokens)
    }

    @Test func chatRequestRendersTheExactChatMLPrompt() throws {
        let generator = try Generator(modelPath: defaultModelPath(), threads: 1)
        let prompt = try generator.chatPrompt(
            [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "What is 2+2?")],
            template: try generator.modelChatTemplate())
        #expect(prompt == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
        let tokens = generator.tokens(forPrompt: prompt, rendered: true)
        #expect(tokens.first == 1)  // <|im_start|> parsed as one special token
        #expect(tokens.filter { $0 == 2 }.count == 2)  // two <|im_end|>
    }

    @Test func chatGenerationStopsAtEndOfTurn() throws {
        let generator = try Generator(modelPath: defaultModelPath(), threads: 2)
        let prompt = try generator.chatPrompt([ChatMessage(role: "user", content: "Say hello.")],
                                              template: try generator.modelChatTemplate())
        let result = try generator.generate(promptTokens: generator.tokens(forPrompt: prompt, rendered: true),
                                            maxTokens: 200, sampling: .greedy)
        #expect(result.finishReason == .endOfGeneration)
        #expect(!result.text.contains("<|im_end|>"))
    }

    @Test func generateCommandPrintsOnlyTheCompletion() throws {
        let output = try TandemProcess.run([
            "generate", "--model", try defaultModelPath(), "--prompt", "The capital of France is",
            "--max-tokens", "2", "--threads", "2",
        ])
        #expect(output.status == 0)
        #expect(output.stdout == " Paris.\n")
    }

    @Test func truncatedModelIsAClearError() throws {
        let source = try Data(contentsOf: URL(fileURLWithPath: try defaultModelPath()))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-truncated-\(UUID().uuidString).gguf").path
        try source.prefix(1_000_000).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let expected = "truncated GGUF file: length of value of 'tokenizer.ggml.merges' at byte 999999 needs 8 bytes, only 1 left"
        #expect(throws: (any Error).self) { try ModelWeights(path: path) }
        do {
            _ = try ModelWeights(path: path)
        } catch {
            #expect("\(error)" == expected)
        }
        let output = try TandemProcess.run(["generate", "--model", path, "--prompt", "hi"])
        #expect(output.status != 0)
        #expect(output.stdout.isEmpty)
        #expect(output.stderr == "Error: \(expected)\n")
    }

    @Test func missingModelAndBadFlagsAreClearErrors() throws {
        var output = try TandemProcess.run(["generate", "--model", "/nonexistent/model.gguf", "--prompt", "hi"])
        #expect(output.status != 0)
        #expect(output.stderr == "Error: model file not found: /nonexistent/model.gguf\n")
        output = try TandemProcess.run(["generate", "--model", try defaultModelPath(), "--prompt", "hi", "--max-tokens", "0"])
        #expect(output.status != 0)
        #expect(output.stderr.hasPrefix("Error: --max-tokens must be at least 1"))
        output = try TandemProcess.run(["bench", "engine", "--batch", "0"])
        #expect(output.status != 0)
        #expect(output.stderr.hasPrefix("Error: --batch must be at least 1"))
        output = try TandemProcess.run(["bench", "engine", "--depth=-1"])
        #expect(output.status != 0)
        #expect(output.stderr.hasPrefix("Error: --depth must be 0 or more"))
    }

    @Test func benchEngineJSONHasTheFigures() throws {
        let output = try TandemProcess.run([
            "bench", "engine", "--model", try defaultModelPath(), "--prompt-tokens", "32", "--gen-tokens", "4",
            "--batch", "3", "--depth", "20", "--threads", "2", "--repetitions", "1", "--json",
        ])
        #expect(output.status == 0)
        let lines = output.stdout.split(separator: "\n")
        #expect(lines.count == 1)
        let object = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
        #expect((object?["prefill_tokens_per_s"] as? Double ?? 0) > 0)
        #expect((object?["generation_tokens_per_s"] as? Double ?? 0) > 0)
        #expect(object?["batch"] as? Int == 3)
        #expect(object?["depth"] as? Int == 20)
    }
}

/// Every `--flag` the help of each subcommand shows is documented in Man/tandem.1.
@Suite struct ManPageTests {
    @Test(arguments: [["generate"], ["bench", "engine"], ["bench", "serve"], ["bench", "kv-transfer"], ["model", "fetch"], []])
    func everyFlagOfTheHelpIsInTheManPage(command: [String]) throws {
        let help = try TandemProcess.run(command + ["--help"])
        #expect(help.status == 0)
        let manPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Man/tandem.1").path
        let man = try String(contentsOfFile: manPath, encoding: .utf8).replacingOccurrences(of: "\\-", with: "-")
        let flags = Set(help.stdout.matches(of: /--[a-z][a-z-]*/).map { String($0.output) })
        #expect(!flags.isEmpty)
        for flag in flags { #expect(man.contains(flag), "\(flag) of tandem \(command.joined(separator: " ")) is not in Man/tandem.1") }
        for subcommand in command { #expect(man.contains(subcommand)) }
    }
}
