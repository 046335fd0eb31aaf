import Engine
import Foundation

/// In-process speed of the forward pass, measured like llama-bench: prefill of one
/// `promptTokens`-token prompt in one step, and generation of `genTokens` tokens by `batch`
/// sequences decoding together (one token each per step, greedy). Both tests start after
/// `depth` tokens of context already in the cache (llama-bench's `-d`), filled untimed.
struct EngineBenchmark {
    let transformer: Transformer
    let promptTokens: Int
    let genTokens: Int
    let batch: Int
    var depth = 0
    let blockSize = 16

    struct Result {
        var prefillTokensPerSecond: [Double] = []
        var generationTokensPerSecond: [Double] = []
    }

    /// Deterministic token ids spread over the vocabulary (llama-bench also uses arbitrary ids).
    private func promptIDs(_ count: Int, seed: Int) -> [Int32] {
        let vocab = transformer.config.vocabSize
        return (0..<count).map { Int32((($0 + seed) &* 2_654_435_761) % vocab) }
    }

    /// Fills the first `depth` positions of each sequence's blocks with context (untimed).
    private func fillContext(cache: KVCache, tables: [[Int32]]) throws {
        guard depth > 0 else { return }
        let chunks = tables.indices.map { s in
            SequenceChunk(tokens: promptIDs(depth, seed: 101 + s), startPosition: 0, blockTable: tables[s])
        }
        _ = try transformer.forward(ForwardBatch(chunks), cache: cache)
    }

    func runPrefill() throws -> Double {
        let cache = try transformer.makeCache(blockSize: blockSize,
                                              numBlocks: max(1, (depth + promptTokens + blockSize - 1) / blockSize))
        let table = (0..<cache.layout.numBlocks).map(Int32.init)
        try fillContext(cache: cache, tables: [table])
        let batch = ForwardBatch([SequenceChunk(tokens: promptIDs(promptTokens, seed: 7), startPosition: depth, blockTable: table)])
        let start = DispatchTime.now()
        _ = try transformer.forward(batch, cache: cache)
        return Double(promptTokens) / seconds(since: start)
    }

    func runGeneration() throws -> Double {
        let blocksPerSequence = (depth + genTokens + blockSize) / blockSize
        let cache = try transformer.makeCache(blockSize: blockSize, numBlocks: blocksPerSequence * batch)
        let tables = (0..<batch).map { s in (0..<blocksPerSequence).map { Int32(s * blocksPerSequence + $0) } }
        try fillContext(cache: cache, tables: tables)
        var next = promptIDs(batch, seed: 11)
        let start = DispatchTime.now()
        for step in 0..<genTokens {
            let chunks = (0..<batch).map { s in
                SequenceChunk(tokens: [next[s]], startPosition: depth + step, blockTable: tables[s])
            }
            let logits = try transformer.forward(ForwardBatch(chunks), cache: cache)
            next = (0..<batch).map { s in Int32(argmax(logits[s])) }
        }
        return Double(genTokens * batch) / seconds(since: start)
    }

    func run(repetitions: Int) throws -> Result {
        // Warm-up: page in the weights and start the threads.
        _ = try EngineBenchmark(transformer: transformer, promptTokens: min(promptTokens, 32),
                                genTokens: min(genTokens, 2), batch: batch, depth: depth).runGeneration()
        var result = Result()
        for _ in 0..<repetitions {
            if promptTokens > 0 { result.prefillTokensPerSecond.append(try runPrefill()) }
            if genTokens > 0 { result.generationTokensPerSecond.append(try runGeneration()) }
        }
        return result
    }

    private func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }
}

func argmax(_ values: ArraySlice<Float>) -> Int {
    var best = values.startIndex
    for i in values.indices where values[i] > values[best] { best = i }
    return best - values.startIndex
}

/// Mean and sample standard deviation.
func meanAndDeviation(_ values: [Double]) -> (mean: Double, deviation: Double) {
    guard !values.isEmpty else { return (0, 0) }
    let mean = values.reduce(0, +) / Double(values.count)
    guard values.count > 1 else { return (mean, 0) }
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
    return (mean, variance.squareRoot())
}
