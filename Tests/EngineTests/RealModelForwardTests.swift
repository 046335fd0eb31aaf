import Engine
import Foundation
import Testing
import ModelStore

/// The real SmolLM2 file through the forward pass alone (token ids from its vocabulary).
@Suite struct RealModelForwardTests {
    @Test func capitalOfFranceIsParis() throws {
        let weights = try ModelWeights(path: defaultModelPath())
        let transformer = Transformer(weights: weights, backend: try CPUBackend(threads: 2))
        let cache = try transformer.makeCache(numBlocks: 4)
        // "The", " capital", " of", " France", " is" in SmolLM2's vocabulary.
        let prompt: [Int32] = [504, 3575, 282, 4649, 314]
        let logits = try transformer.forward(
            ForwardBatch([SequenceChunk(tokens: prompt, startPosition: 0, blockTable: [0, 1, 2, 3])]), cache: cache)
        let row = Array(logits[0])
        let best = row.indices.max { row[$0] < row[$1] }!
        #expect(best == 7042)  // " Paris"
    }
}
