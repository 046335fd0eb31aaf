import Engine
import Foundation
import Testing
import ModelStore

/// A batch of sequences gives the same logits as running each sequence alone, bit for bit,
/// whatever the mix of prefill chunks and decode steps (real SmolLM2 weights, quantized kernels
/// included): every kernel computes a row the same way however many rows share the step
/// (KernelsMatmulTests.eachRowEqualsItsProductAlone), so batched and continuous-batching
/// decoding produce exactly the tokens of one sequence alone.
@Suite struct BatchingTests {
    static let prompts: [[Int32]] = [
        [504, 3575, 282, 4649, 314],                          // "The capital of France is"
        (0..<37).map { Int32(($0 * 7919 + 13) % 49152) },    // crosses two 16-token blocks
        [1, 2, 3],
    ]

    let transformer: Transformer

    init() throws {
        transformer = Transformer(weights: try ModelWeights(path: DefaultModel.path()),
                                  backend: try CPUBackend(threads: 2))
    }

    /// Logits of every position of `tokens`, run alone, prefilled in chunks of `chunk` tokens.
    func alone(_ tokens: [Int32], chunk: Int) throws -> [[Float]] {
        let cache = try transformer.makeCache(numBlocks: 8)
        let table: [Int32] = [5, 2, 7, 0, 1, 3, 4, 6]  // deliberately not in order
        var rows: [[Float]] = []
        var start = 0
        while start < tokens.count {
            let end = min(tokens.count, start + chunk)
            let logits = try transformer.forward(
                ForwardBatch([SequenceChunk(tokens: Array(tokens[start..<end]), startPosition: start,
                                            blockTable: table, logits: .allTokens)]), cache: cache)
            rows += (0..<logits.rows.count).map { Array(logits[$0]) }
            start = end
        }
        return rows
    }

    func expectSame(_ a: [Float], _ b: [Float], _ comment: Comment) {
        let error = relativeL2Error(a.map(Double.init), b.map(Double.init))
        #expect(a == b, "\(comment): error \(error)")
    }

    @Test func chunkedPrefillEqualsWholePrefill() throws {
        let tokens = Self.prompts[1]
        let whole = try alone(tokens, chunk: tokens.count)
        for chunk in [1, 5, 16] {
            let chunked = try alone(tokens, chunk: chunk)
            for p in tokens.indices { expectSame(chunked[p], whole[p], "chunk \(chunk), position \(p)") }
        }
    }

    @Test func mixedPrefillAndDecodeBatchEqualsSequencesAlone() throws {
        let expected = try Self.prompts.map { try alone($0, chunk: $0.count) }
        let cache = try transformer.makeCache(numBlocks: 12)
        let tables: [[Int32]] = [[11, 3], [0, 9, 4], [6]]
        // Step 1: sequence 0 prefills all but its last token, sequence 1 its first 20 tokens,
        // sequence 2 its first token.
        let firstCounts = [4, 20, 1]
        var batch = ForwardBatch((0..<3).map { s in
            SequenceChunk(tokens: Array(Self.prompts[s][..<firstCounts[s]]), startPosition: 0,
                          blockTable: tables[s], logits: .allTokens)
        })
        var logits = try transformer.forward(batch, cache: cache)
        for (i, row) in logits.rows.enumerated() {
            expectSame(Array(logits[i]), expected[row.sequence][row.position], "step 1 \(row)")
        }
        // Step 2: sequence 0 decodes one token, sequence 1 prefills the rest, sequence 2 decodes.
        batch = ForwardBatch([
            SequenceChunk(tokens: [Self.prompts[0][4]], startPosition: 4, blockTable: tables[0]),
            SequenceChunk(tokens: Array(Self.prompts[1][20...]), startPosition: 20, blockTable: tables[1], logits: .allTokens),
            SequenceChunk(tokens: [Self.prompts[2][1]], startPosition: 1, blockTable: tables[2]),
        ])
        logits = try transformer.forward(batch, cache: cache)
        #expect(logits.rows.count == 1 + 17 + 1)
        for (i, row) in logits.rows.enumerated() {
            expectSame(Array(logits[i]), expected[row.sequence][row.position], "step 2 \(row)")
        }
        // Step 3: only sequence 2 decodes; the others' blocks stay untouched.
        logits = try transformer.forward(ForwardBatch([
            SequenceChunk(tokens: [Self.prompts[2][2]], startPosition: 2, blockTable: tables[2]),
        ]), cache: cache)
        expectSame(Array(logits.last(ofSequence: 0)!), expected[2][2], "step 3")
    }

    @Test func invalidBatchesAreRejectedWithReasons() throws {
        let cache = try transformer.makeCache(numBlocks: 2)
        func message(_ chunk: SequenceChunk) -> String? {
            do {
                _ = try transformer.forward(ForwardBatch([chunk]), cache: cache)
                return nil
            } catch { return "\(error)" }
        }
        #expect(message(SequenceChunk(tokens: Array(repeating: 1, count: 17), startPosition: 0, blockTable: [0]))
            == "invalid forward batch: sequence 0 needs 2 blocks for 17 positions but its block table has 1")
        #expect(message(SequenceChunk(tokens: [1], startPosition: 0, blockTable: [2]))
            == "invalid forward batch: sequence 0 uses block 2 outside the cache (2 blocks)")
        #expect(message(SequenceChunk(tokens: [49152], startPosition: 0, blockTable: [0]))
            == "invalid forward batch: sequence 0 has token id 49152 outside the vocabulary (49152)")
        #expect(message(SequenceChunk(tokens: [], startPosition: 0, blockTable: [0]))
            == "invalid forward batch: sequence 0 has no tokens")
    }
}
