import Engine
import Foundation
import GGUF
import Tokenization

/// Prompts from a ShareGPT-style JSON file (a list of `{"conversations": [{"from": …,
/// "value": …}, …]}`), as `vllm bench serve --dataset-name sharegpt` takes them: the first
/// turn is the prompt, the second the reference reply whose token count is the output length
/// (unless `outputLength` fixes it). Conversations with fewer than two turns are skipped, and
/// like vLLM those with a prompt or reply under 4 tokens, a prompt over 1024 tokens or both
/// over 2048. The usable ones are shuffled with `seed` and the first `count` taken.
public enum ShareGPTDataset {
    public static func load(path: String, count: Int, outputLength: Int?, tokenizer: Tokenizer,
                            seed: UInt64) throws -> [BenchmarkPrompt] {
        let turns = try conversations(path: path)
        var usable: [BenchmarkPrompt] = []
        for (prompt, reply) in turns {
            let promptTokens = tokenizer.encode(prompt, addSpecial: false).count
            let replyTokens = outputLength ?? tokenizer.encode(reply, addSpecial: false).count
            if promptTokens < 4 || replyTokens < 4 || promptTokens > 1024 || promptTokens + replyTokens > 2048 { continue }
            usable.append(BenchmarkPrompt(text: prompt, promptTokens: promptTokens, outputTokens: replyTokens))
        }
        guard usable.count >= count else {
            throw DatasetError("dataset \(path) has \(usable.count) usable conversations, fewer than --num-prompts \(count)")
        }
        var generator = SplitMix64(seed: seed)
        usable.shuffle(using: &generator)
        return Array(usable.prefix(count))
    }

    /// The (first turn, second turn) texts of every conversation with two turns or more.
    public static func conversations(path: String) throws -> [(String, String)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError("dataset file not found: \(path)")
        }
        guard let json = try? JSONSerialization.jsonObject(with: data) else {
            throw DatasetError("dataset \(path) is not valid JSON")
        }
        guard let entries = json as? [Any] else {
            throw DatasetError("dataset \(path): expected a JSON list of conversations at the top level")
        }
        var result: [(String, String)] = []
        for (index, entry) in entries.enumerated() {
            guard let turns = (entry as? [String: Any])?["conversations"] as? [Any] else {
                throw DatasetError("dataset \(path): entry \(index) has no \"conversations\" list")
            }
            let texts = try turns.prefix(2).enumerated().map { turnIndex, turn in
                guard let value = (turn as? [String: Any])?["value"] as? String else {
                    throw DatasetError("dataset \(path): entry \(index), turn \(turnIndex) has no string \"value\"")
                }
                return value
            }
            if texts.count == 2 { result.append((texts[0], texts[1])) }
        }
        guard !result.isEmpty else {
            throw DatasetError("dataset \(path) has no conversation with two turns (a prompt and a reply)")
        }
        return result
    }
}
