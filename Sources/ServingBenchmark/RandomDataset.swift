import Engine
import GGUF
import Tokenization

/// Prompts of random tokens, as `vllm bench serve --dataset-name random` makes them: each
/// prompt's length is drawn uniformly from inputLength·(1 ± rangeRatio), its output length
/// from outputLength·(1 ± rangeRatio). Unlike vLLM, the prompt text has exactly the drawn
/// number of tokens under `tokenizer` (re-encoding decoded random ids can merge or split them,
/// so the ids are re-drawn, cut or topped up until the text encodes to the right length).
///
/// Several input lengths (`--random-input-len 64,2048`) make a mixed workload: the prompts are
/// split evenly between the lengths (the first ones get one more when the count does not
/// divide) and shuffled with `seed`, so short and long prompts arrive interleaved.
public enum RandomDataset {
    public static func make(count: Int, inputLength: Int, outputLength: Int, rangeRatio: Double,
                            tokenizer: Tokenizer, seed: UInt64) throws -> [BenchmarkPrompt] {
        try make(count: count, inputLengths: [inputLength], outputLength: outputLength, rangeRatio: rangeRatio,
                 tokenizer: tokenizer, seed: seed)
    }

    public static func make(count: Int, inputLengths: [Int], outputLength: Int, rangeRatio: Double,
                            tokenizer: Tokenizer, seed: UInt64) throws -> [BenchmarkPrompt] {
        precondition(count >= 0 && !inputLengths.isEmpty && inputLengths.allSatisfy { $0 >= 1 }
            && outputLength >= 1 && (0..<1).contains(rangeRatio))
        var generator = SplitMix64(seed: seed)
        let vocabulary = (0..<Int32(tokenizer.vocabularySize)).filter { !tokenizer.isControl($0) }
        guard !vocabulary.isEmpty else { throw DatasetError("the tokenizer has no ordinary tokens to draw prompts from") }
        var centres = (0..<count).map { inputLengths[$0 % inputLengths.count] }
        if inputLengths.count > 1 { centres.shuffle(using: &generator) }
        return try centres.map { inputLength in
            let input = drawLength(around: inputLength, rangeRatio: rangeRatio, using: &generator)
            let output = drawLength(around: outputLength, rangeRatio: rangeRatio, using: &generator)
            let text = try promptText(tokens: input, vocabulary: vocabulary, tokenizer: tokenizer, using: &generator)
            return BenchmarkPrompt(text: text, promptTokens: input, outputTokens: output)
        }
    }

    /// A length uniform in [⌊n·(1−r)⌋, ⌈n·(1+r)⌉], at least 1.
    static func drawLength(around n: Int, rangeRatio: Double, using generator: inout SplitMix64) -> Int {
        let low = max(1, Int((Double(n) * (1 - rangeRatio)).rounded(.down)))
        let high = max(low, Int((Double(n) * (1 + rangeRatio)).rounded(.up)))
        return Int.random(in: low...high, using: &generator)
    }

    /// Text that `tokenizer` encodes (no BOS/EOS, special tokens parsed as a server does) to
    /// exactly `tokens` tokens.
    static func promptText(tokens: Int, vocabulary: [Int32], tokenizer: Tokenizer,
                           using generator: inout SplitMix64) throws -> String {
        func draw(_ n: Int) -> [Int32] { (0..<n).map { _ in vocabulary.randomElement(using: &generator)! } }
        for _ in 0..<8 {
            var ids = draw(tokens)
            for _ in 0..<16 {
                let text = tokenizer.decode(ids)
                let encoded = tokenizer.encode(text, addSpecial: false, parseSpecial: true)
                if encoded.count == tokens { return text }
                ids = encoded.count > tokens ? Array(encoded.prefix(tokens)) : encoded + draw(tokens - encoded.count)
            }
        }
        throw DatasetError("could not make a prompt of exactly \(tokens) tokens with this tokenizer")
    }
}
