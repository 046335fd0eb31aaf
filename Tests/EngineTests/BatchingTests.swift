import Engine
import Foundation
import Testing
import ModelStore
import TestSupport

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

    static func transformer(_ kernels: CPUKernelPath = .auto) throws -> Transformer {
        Transformer(weights: try ModelWeights(path: defaultModelPath()),
                    backend: try CPUBackend(threads: 2, kernels: kernels))
    }

    /// Every kernel path this CPU runs with a float32 cache; a float16 cache on the default
    /// path and on the next one (attention converts half precision inside each path's variant).
    static let kernelsAndCaches: [(CPUKernelPath, KVCacheLayout.DataType)] =
        CPUKernels.supportedPaths.map { ($0, .float32) }
        + [(.auto, .float16), (CPUKernels.supportedPaths.dropFirst().first ?? .portable, .float16)]

    /// Logits of every position of `tokens`, run alone, prefilled in chunks of `chunk` tokens.
    func alone(_ tokens: [Int32], chunk: Int, on transformer: Transformer,
               kvDataType: KVCacheLayout.DataType = .float32) throws -> [[Float]] {
        let cache = try transformer.makeCache(numBlocks: 8, dataType: kvDataType)
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

    func expectSame(_ a: [Float], _ b: [Float], _ comment: Comment, sourceLocation: SourceLocation = #_sourceLocation) {
        let difference = bitwiseDifference(a, b)
        let error = a.count == b.count ? relativeL2Error(a.map(Double.init), b.map(Double.init)) : .nan
        #expect(difference == nil, "\(comment): \(difference ?? ""); relative L2 error \(error)", sourceLocation: sourceLocation)
    }

    @Test(arguments: kernelsAndCaches)
    func chunkedPrefillEqualsWholePrefill(kernels: CPUKernelPath, kvDataType: KVCacheLayout.DataType) throws {
        let transformer = try Self.transformer(kernels)
        let tokens = Self.prompts[1]
        let whole = try alone(tokens, chunk: tokens.count, on: transformer, kvDataType: kvDataType)
        for chunk in [1, 5, 16] {
            let chunked = try alone(tokens, chunk: chunk, on: transformer, kvDataType: kvDataType)
            for p in tokens.indices {
                expectSame(chunked[p], whole[p], "\(kernels) \(kvDataType) chunk \(chunk), position \(p)")
            }
        }
    }

    @Test(arguments: kernelsAndCaches)
    func mixedPrefillAndDecodeBatchEqualsSequencesAlone(kernels: CPUKernelPath, kvDataType: KVCacheLayout.DataType) throws {
        let transformer = try Self.transformer(kernels)
        let label = "\(kernels) \(kvDataType)"
        let expected = try Self.prompts.map { try alone($0, chunk: $0.count, on: transformer, kvDataType: kvDataType) }
        let cache = try transformer.makeCache(numBlocks: 12, dataType: kvDataType)
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
            expectSame(Array(logits[i]), expected[row.sequence][row.position], "\(label) step 1 \(row)")
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
            expectSame(Array(logits[i]), expected[row.sequence][row.position], "\(label) step 2 \(row)")
        }
        // Step 3: only sequence 2 decodes; the others' blocks stay untouched.
        logits = try transformer.forward(ForwardBatch([
            SequenceChunk(tokens: [Self.prompts[2][2]], startPosition: 2, blockTable: tables[2]),
        ]), cache: cache)
        expectSame(Array(logits.last(ofSequence: 0)!), expected[2][2], "\(label) step 3")
    }

    /// On the real model a half-precision cache moves the logits a few percent (relative L2;
    /// measured 0.046 at worst over these 37 positions: SmolLM2's keys are large, so rounding
    /// them to 11 bits shifts attention scores), while a wrong conversion or layout lands near
    /// 1. Where float32's best token leads by more than half a logit, float16 picks it too.
    @Test func float16CacheLogitsAreCloseToFloat32() throws {
        let transformer = try Self.transformer()
        let tokens = Self.prompts[1]
        let single = try alone(tokens, chunk: tokens.count, on: transformer)
        let half = try alone(tokens, chunk: tokens.count, on: transformer, kvDataType: .float16)
        let errors = zip(single, half).map { relativeL2Error($0.map(Double.init), $1.map(Double.init)) }
        #expect(errors.max()! < 0.1, "relative L2 errors by position: \(errors)")
        #expect(errors.max()! > 0, "the half-precision cache changed nothing: is it used?")
        for (position, (a, b)) in zip(single, half).enumerated() {
            let ranked = a.indices.sorted { a[$0] > a[$1] }
            guard a[ranked[0]] - a[ranked[1]] > 0.5 else { continue }
            #expect(b.indices.max { b[$0] < b[$1] } == ranked[0], "position \(position)")
        }
    }

    @Test func invalidBatchesAreRejectedWithReasons() throws {
        let transformer = try Self.transformer()
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
