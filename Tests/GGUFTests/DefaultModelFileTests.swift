import ModelStore
import Testing
import GGUF
import TestSupport

@Suite struct DefaultModelFileTests {
    let file: GGUFFile

    init() throws { file = try GGUFFile(path: requireModel(at: DefaultModel.path())) }

    @Test func metadataMatchesTheReference() throws {
        #expect(file.version == 3)
        #expect(try file.architecture == "llama")
        #expect(try file.uint("llama.block_count") == 30)
        #expect(try file.uint("llama.embedding_length") == 576)
        #expect(try file.uint("llama.feed_forward_length") == 1536)
        #expect(try file.uint("llama.attention.head_count") == 9)
        #expect(try file.uint("llama.attention.head_count_kv") == 3)
        #expect(try file.uint("llama.context_length") == 8192)
        #expect(try file.float("llama.rope.freq_base") == 100000)
        #expect(try file.float("llama.attention.layer_norm_rms_epsilon") == 1e-5)
        #expect(try file.string("tokenizer.ggml.model") == "gpt2")
        #expect(try file.string("tokenizer.ggml.pre") == "smollm")
        #expect(try file.stringArray("tokenizer.ggml.tokens").count == 49152)
        #expect(try file.stringArray("tokenizer.ggml.merges").count == 48900)
        #expect(try file.bool("tokenizer.ggml.add_bos_token") == false)
        #expect(try file.uint("tokenizer.ggml.bos_token_id") == 1)
        #expect(try file.uint("tokenizer.ggml.eos_token_id") == 2)
        #expect(try file.stringArray("tokenizer.ggml.tokens")[2] == "<|im_end|>")
        #expect(file.alignment == 32)
    }

    @Test func tensorTypesAndShapes() throws {
        #expect(file.tensors.count == 2 + 30 * 9)
        let embedding = try file.tensor(named: "token_embd.weight")
        #expect(embedding.type == .q8_0)
        #expect(embedding.shape == [576, 49152])
        #expect(try file.tensor(named: "output_norm.weight").type == .f32)
        #expect(try file.tensor(named: "blk.0.attn_norm.weight").type == .f32)
        #expect(try file.tensor(named: "blk.0.ffn_norm.weight").type == .f32)
        let q = try file.tensor(named: "blk.7.attn_q.weight")
        #expect(q.type == .q4_1)
        #expect(q.shape == [576, 576])
        #expect(try file.tensor(named: "blk.29.ffn_down.weight").shape == [1536, 576])
        #expect(try file.tensor(named: "blk.0.attn_k.weight").shape == [576, 192])
        #expect(!file.hasTensor(named: "output.weight"))  // tied to token_embd
        for tensor in file.tensors where tensor.shape.count == 1 { #expect(tensor.type == .f32) }
        // The last tensor ends inside the file: the whole data section is covered.
        let end = file.tensors.map { file.dataOffset + $0.offset + $0.byteCount }.max()!
        #expect(end <= file.fileSize)
    }

    @Test func normWeightsDecodeToPlausibleValues() throws {
        let norm = try file.floats(for: file.tensor(named: "output_norm.weight"))
        #expect(norm.count == 576)
        #expect(norm.allSatisfy { $0.isFinite && abs($0) < 100 })
        let embedding = try file.tensor(named: "token_embd.weight")
        let row = try file.floats(for: embedding).prefix(576)
        #expect(row.allSatisfy { $0.isFinite && abs($0) < 10 })
        #expect(row.contains { $0 != 0 })
    }

    @Test func dataPointsIntoTheMapping() throws {
        let tensor = try file.tensor(named: "blk.0.attn_q.weight")
        let bytes = file.data(for: tensor)
        #expect(bytes.count == 576 * 576 / 32 * 20)
        #expect(tensor.offset % 32 == 0)
        // Every tensor lies at its file offset in one mapping: nothing is copied.
        let first = file.tensors[0]
        for other in file.tensors.prefix(20) {
            #expect(file.data(for: other).baseAddress! - file.data(for: first).baseAddress! == other.offset - first.offset)
        }
    }
}
