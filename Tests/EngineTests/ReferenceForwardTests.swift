import Engine
import Foundation
import GGUF
import Testing

/// The engine's logits against the independent float64 reference on small random models.
@Suite struct ReferenceForwardTests {
    static let tokens: [Int] = [3, 17, 42, 5, 88, 61, 0, 29, 77, 12, 50, 9, 33, 71, 2, 64, 19, 45]

    /// Runs all of `tokens` through the engine (prefill in chunks of `chunk`, with `threads`)
    /// and returns the logits of every position.
    static func engineLogits(path: String, tokens: [Int] = tokens, chunk: Int, threads: Int = 2,
                             kernels: CPUKernelPath = .auto, kvDataType: KVCacheLayout.DataType = .float32) throws -> [[Double]] {
        let transformer = Transformer(weights: try ModelWeights(path: path),
                                      backend: try CPUBackend(threads: threads, kernels: kernels))
        let blocks = (tokens.count + 3) / 4 + 2
        let cache = try transformer.makeCache(blockSize: 4, numBlocks: blocks, dataType: kvDataType)
        let table = (0..<blocks).reversed().map(Int32.init)  // any order of blocks
        var rows: [[Double]] = []
        var start = 0
        while start < tokens.count {
            let end = min(tokens.count, start + chunk)
            let logits = try transformer.forward(ForwardBatch([
                SequenceChunk(tokens: tokens[start..<end].map(Int32.init), startPosition: start,
                              blockTable: table, logits: .allTokens),
            ]), cache: cache)
            rows += (0..<logits.rows.count).map { Array(logits[$0]).map(Double.init) }
            start = end
        }
        return rows
    }

    /// The worst relative L2 error over all positions, and (as a yardstick) the smallest
    /// distance between the reference logits of two different positions.
    static func errors(_ model: TestModel, chunk: Int, kernels: CPUKernelPath = .auto,
                       kvDataType: KVCacheLayout.DataType = .float32) throws -> (worst: Double, yardstick: Double) {
        let (path, reference) = try model.write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let expected = reference.logits(tokens)
        let actual = try engineLogits(path: path, chunk: chunk, kernels: kernels, kvDataType: kvDataType)
        let worst = zip(actual, expected).map { relativeL2Error($0, $1) }.max()!
        let yardstick = (1..<expected.count).map { relativeL2Error(expected[$0 - 1], expected[$0]) }.min()!
        return (worst, yardstick)
    }

    @Test(arguments: ["llama", "qwen2"], [1, 5, 18])
    func float32WeightsMatchTheReference(architecture: String, chunk: Int) throws {
        var model = TestModel(architecture: architecture)
        model.tiedOutput = architecture == "llama"
        #expect(try Self.errors(model, chunk: chunk).worst < 1e-4)
    }

    /// A half-precision KV cache rounds each key and value to 11 significant bits (relative
    /// error up to 2^-11 ≈ 5e-4 each); through 2 layers the logits stay within 5e-3, far
    /// below the distance between two positions' logits.
    @Test(arguments: ["llama", "qwen2"], [1, 18])
    func float16KVCacheStaysCloseToTheReference(architecture: String, chunk: Int) throws {
        let model = TestModel(architecture: architecture)
        let (error, yardstick) = try Self.errors(model, chunk: chunk, kvDataType: .float16)
        #expect(error < 5e-3, "\(architecture): \(error)")
        #expect(error < yardstick / 20, "\(architecture): \(error) against \(yardstick)")
    }

    /// Quantized weights: the reference runs on the same weights dequantized, so the only
    /// difference left is the kernels' 8-bit quantization of the activations (per 32 values).
    /// Measured on these random blocks, one product is 4e-3 to 9e-3 off in relative L2
    /// (Q4_0 … Q6_K alike); through 2 layers of 7 products in sequence the logits end
    /// 0.01–0.14 off. Hence 0.25, and as a check that this tolerance still discriminates, the
    /// error must also stay under a quarter of the distance between the logits of two
    /// neighbouring positions (which is of order 1): a wrong block layout, dequantization or
    /// position mix-up lands there.
    /// Long enough that attention is spread over the pool's threads (short steps run it on
    /// the calling thread).
    @Test(arguments: [1, 2], [150, 64])
    func longSequenceMatchesTheReference(threads: Int, chunk: Int) throws {
        let (path, reference) = try TestModel(architecture: "llama", seed: 5).write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let tokens = (0..<150).map { ($0 * 37 + 11) % 96 }
        let expected = reference.logits(tokens)
        let actual = try Self.engineLogits(path: path, tokens: tokens, chunk: chunk, threads: threads)
        #expect(zip(actual, expected).map { relativeL2Error($0, $1) }.max()! < 1e-4)
    }

    @Test(arguments: [GGMLType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K, .f16, .bf16])
    func quantizedWeightsMatchTheReferenceOnDequantizedWeights(type: GGMLType) throws {
        for architecture in ["llama", "qwen2"] {
            let model = TestModel(architecture: architecture, matrixType: type, embeddingType: type, tiedOutput: false)
            let (error, yardstick) = try Self.errors(model, chunk: 7)
            let tolerance = [GGMLType.f16, .bf16].contains(type) ? 1e-4 : 0.25
            #expect(error < tolerance, "\(architecture) \(type): \(error)")
            // Random K-quant blocks have unsigned scales and mins, so every weight row shares an
            // offset and all positions end with nearly the same logits: no yardstick there.
            if ![GGMLType.q4_K, .q5_K].contains(type) {
                #expect(error < yardstick / 4, "\(architecture) \(type): \(error) against \(yardstick)")
            }
        }
    }

    /// Every kernel path this CPU runs (matrix products, attention, norms, activations) against
    /// the float64 reference: float weights over a sequence long enough to spread attention
    /// over the threads, and each quantized type (tolerances as above).
    @Test(arguments: CPUKernels.supportedPaths)
    func everyKernelPathMatchesTheReference(kernels: CPUKernelPath) throws {
        let (path, reference) = try TestModel(architecture: "llama", seed: 5).write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let tokens = (0..<150).map { ($0 * 37 + 11) % 96 }
        let expected = reference.logits(tokens)
        let actual = try Self.engineLogits(path: path, tokens: tokens, chunk: 64, kernels: kernels)
        #expect(zip(actual, expected).map { relativeL2Error($0, $1) }.max()! < 1e-4, "\(kernels)")
        for type in [GGMLType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K, .f16, .bf16] {
            let model = TestModel(architecture: "qwen2", matrixType: type, embeddingType: type, tiedOutput: false)
            let error = try Self.errors(model, chunk: 7, kernels: kernels).worst
            #expect(error < ([GGMLType.f16, .bf16].contains(type) ? 1e-4 : 0.25), "\(kernels) \(type): \(error)")
        }
    }
}
