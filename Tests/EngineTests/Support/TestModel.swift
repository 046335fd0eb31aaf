import Foundation
import GGUF
import Engine
import GGUFTestSupport

/// A small random Llama-family model written as a GGUF file with GGUFWriter, plus the float64
/// reference over its weights as read back (dequantized) from that file.
struct TestModel {
    var architecture = "llama"
    var layers = 2
    var hidden = 256
    var heads = 4
    var kvHeads = 2
    var ffn = 512
    var vocab = 96
    var matrixType: GGMLType = .f32
    var embeddingType: GGMLType = .f32
    var tiedOutput = true
    var ropeBase: Float = 10000
    var seed: UInt64 = 1
    /// For error tests: tensors left out, and a feed-forward size declared in the metadata
    /// that differs from the tensors'.
    var omittedTensors: Set<String> = []
    var declaredFFN: Int?

    var headDim: Int { hidden / heads }

    /// Writes the file to a fresh temporary path and returns it with the reference model.
    func write() throws -> (path: String, reference: ReferenceTransformer) {
        var rng = SplitMix64(seed: seed)
        var writer = GGUFWriter()
        let a = architecture
        writer.add("general.architecture", .string(a))
        writer.add("general.name", .string("tandem-test-\(a)"))
        writer.add("\(a).block_count", .uint32(UInt32(layers)))
        writer.add("\(a).embedding_length", .uint32(UInt32(hidden)))
        writer.add("\(a).feed_forward_length", .uint32(UInt32(declaredFFN ?? ffn)))
        writer.add("\(a).attention.head_count", .uint32(UInt32(heads)))
        writer.add("\(a).attention.head_count_kv", .uint32(UInt32(kvHeads)))
        writer.add("\(a).rope.freq_base", .float32(ropeBase))
        writer.add("\(a).attention.layer_norm_rms_epsilon", .float32(1e-5))
        writer.add("\(a).context_length", .uint32(256))

        func uniform(_ count: Int, _ limit: Float) -> [Float] {
            (0..<count).map { _ in Float.random(in: -limit...limit, using: &rng) }
        }
        /// Matrices of `rows` × `columns`, scaled so outputs stay near unit size.
        func matrix(_ name: String, rows: Int, columns: Int, type: GGMLType) throws {
            if omittedTensors.contains(name) { return }
            let shape = [columns, rows]
            switch type {
            case .f32, .f16, .bf16, .q8_0, .q4_0, .q4_1:
                try writer.addTensor(name: name, shape: shape, type: type,
                                     values: uniform(rows * columns, 1.7 / Float(columns).squareRoot()))
            default:
                try writer.addTensor(name: name, shape: shape, type: type,
                                     data: type.randomData(elements: rows * columns, using: &rng))
            }
        }
        func vector(_ name: String, count: Int, around center: Float, spread: Float) throws {
            if omittedTensors.contains(name) { return }
            try writer.addTensor(name: name, shape: [count], values: uniform(count, spread).map { $0 + center })
        }

        try matrix("token_embd.weight", rows: vocab, columns: hidden, type: embeddingType)
        for l in 0..<layers {
            let b = "blk.\(l)."
            try vector(b + "attn_norm.weight", count: hidden, around: 1, spread: 0.2)
            try matrix(b + "attn_q.weight", rows: heads * headDim, columns: hidden, type: matrixType)
            try matrix(b + "attn_k.weight", rows: kvHeads * headDim, columns: hidden, type: matrixType)
            try matrix(b + "attn_v.weight", rows: kvHeads * headDim, columns: hidden, type: matrixType)
            if a == "qwen2" {
                try vector(b + "attn_q.bias", count: heads * headDim, around: 0, spread: 0.5)
                try vector(b + "attn_k.bias", count: kvHeads * headDim, around: 0, spread: 0.5)
                try vector(b + "attn_v.bias", count: kvHeads * headDim, around: 0, spread: 0.5)
            }
            try matrix(b + "attn_output.weight", rows: hidden, columns: heads * headDim, type: matrixType)
            try vector(b + "ffn_norm.weight", count: hidden, around: 1, spread: 0.2)
            try matrix(b + "ffn_gate.weight", rows: ffn, columns: hidden, type: matrixType)
            try matrix(b + "ffn_up.weight", rows: ffn, columns: hidden, type: matrixType)
            try matrix(b + "ffn_down.weight", rows: hidden, columns: ffn, type: matrixType)
        }
        try vector("output_norm.weight", count: hidden, around: 1, spread: 0.2)
        if !tiedOutput { try matrix("output.weight", rows: vocab, columns: hidden, type: matrixType) }

        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("tandem-engine-\(a)-\(matrixType)-\(seed)-\(UUID().uuidString).gguf").path
        try writer.write(to: path)

        // The reference reads the weights back through the GGUF reader's dequantizer.
        let file = try GGUFFile(path: path)
        var tensors: [String: [Double]] = [:]
        for t in file.tensors { tensors[t.name] = try file.floats(for: t).map(Double.init) }
        let reference = ReferenceTransformer(
            layers: layers, hidden: hidden, heads: heads, kvHeads: kvHeads, headDim: headDim, ffn: ffn,
            vocab: vocab, ropeBase: Double(ropeBase), epsilon: 1e-5,
            rope: a == "qwen2" ? .neox : .interleaved, tensors: tensors)
        return (path, reference)
    }
}
