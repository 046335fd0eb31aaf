import Engine
import Foundation
import GGUF
import Testing
import ModelStore

/// What the loader reads from a GGUF file, and the errors for files it cannot use.
@Suite struct ModelLoadingTests {
    func loadError(_ model: TestModel) throws -> String? {
        let path = try model.write().path
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try ModelWeights(path: path)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func configOfTheDefaultModel() throws {
        let weights = try ModelWeights(path: defaultModelPath())
        let c = weights.config
        #expect(c == ModelConfig(architecture: .llama, layerCount: 30, hiddenSize: 576, headCount: 9, kvHeadCount: 3,
                                 headDim: 64, ffnSize: 1536, vocabSize: 49152, contextLength: 8192,
                                 ropeBase: 100_000, rmsEpsilon: 1e-5))
        #expect(weights.tiedOutput)
        #expect(weights.layers[0].query.type == .q4_1)
        #expect(weights.tokenEmbedding.type == .q8_0)
        // Views into the mapping, not copies: the matrix bytes lie inside the file's data.
        let info = try weights.file.tensor(named: "blk.0.attn_q.weight")
        #expect(weights.layers[0].query.data == weights.file.data(for: info).baseAddress!)
    }

    @Test func qwen2HasBiasesAndNeoxRope() throws {
        let (path, _) = try TestModel(architecture: "qwen2").write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let weights = try ModelWeights(path: path)
        #expect(weights.config.architecture.ropeStyle == .neoxHalves)
        #expect(weights.layers[1].keyBias?.count == 2 * 64)
    }

    @Test func unknownArchitectureIsAnError() throws {
        #expect(try loadError(TestModel(architecture: "gpt2"))
            == "unsupported model architecture 'gpt2' (supported: llama, qwen2)")
    }

    @Test func missingTensorIsAnError() throws {
        #expect(try loadError(TestModel(omittedTensors: ["blk.1.ffn_up.weight"]))
            == "model is missing tensor 'blk.1.ffn_up.weight'")
        #expect(try loadError(TestModel(architecture: "qwen2", omittedTensors: ["blk.0.attn_k.bias"]))
            == "model is missing tensor 'blk.0.attn_k.bias'")
    }

    @Test func shapeMismatchIsAnError() throws {
        #expect(try loadError(TestModel(declaredFFN: 1024))
            == "tensor 'blk.0.ffn_gate.weight' has shape [256, 512], expected [256, 1024]")
    }

    @Test func untiedOutputIsUsed() throws {
        let (path, _) = try TestModel(tiedOutput: false).write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let weights = try ModelWeights(path: path)
        #expect(!weights.tiedOutput)
        #expect(weights.output.name == "output.weight")
    }
}
