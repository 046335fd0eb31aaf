import CKernels
import GGUF

/// The tensors of one transformer block.
public struct LayerWeights: Sendable {
    public let attentionNorm: [Float]
    public let query: WeightMatrix
    public let key: WeightMatrix
    public let value: WeightMatrix
    /// qwen2 only.
    public let queryBias: [Float]?
    public let keyBias: [Float]?
    public let valueBias: [Float]?
    public let attentionOutput: WeightMatrix
    public let ffnNorm: [Float]
    public let ffnGate: WeightMatrix
    public let ffnUp: WeightMatrix
    public let ffnDown: WeightMatrix
}

/// All weights of a model: matrices are views into the memory-mapped GGUF file; the small
/// vectors (norms, biases) are dequantized to float32 copies.
public final class ModelWeights: @unchecked Sendable {
    // @unchecked: immutable after init; the matrices point into `file`'s read-only mapping,
    // which this object keeps alive.
    public let file: GGUFFile
    public let config: ModelConfig
    public let tokenEmbedding: WeightMatrix
    public let layers: [LayerWeights]
    public let outputNorm: [Float]
    /// `output.weight`, or the token embedding when the model ties them.
    public let output: WeightMatrix
    public var tiedOutput: Bool { output.name == tokenEmbedding.name }
    /// Llama 3 style per-dimension RoPE frequency divisors (`rope_freqs.weight`), if present.
    public let ropeFrequencyFactors: [Float]?

    public init(file: GGUFFile, config: ModelConfig) throws {
        self.file = file
        self.config = config
        let c = config
        let loader = TensorLoader(file: file)
        tokenEmbedding = try loader.matrix("token_embd.weight", rows: c.vocabSize, columns: c.hiddenSize)
        layers = try (0..<c.layerCount).map { i in
            let b = "blk.\(i)."
            let bias = c.architecture.hasQKVBias
            return LayerWeights(
                attentionNorm: try loader.vector(b + "attn_norm.weight", count: c.hiddenSize),
                query: try loader.matrix(b + "attn_q.weight", rows: c.qSize, columns: c.hiddenSize),
                key: try loader.matrix(b + "attn_k.weight", rows: c.kvSize, columns: c.hiddenSize),
                value: try loader.matrix(b + "attn_v.weight", rows: c.kvSize, columns: c.hiddenSize),
                queryBias: bias ? try loader.vector(b + "attn_q.bias", count: c.qSize) : nil,
                keyBias: bias ? try loader.vector(b + "attn_k.bias", count: c.kvSize) : nil,
                valueBias: bias ? try loader.vector(b + "attn_v.bias", count: c.kvSize) : nil,
                attentionOutput: try loader.matrix(b + "attn_output.weight", rows: c.hiddenSize, columns: c.qSize),
                ffnNorm: try loader.vector(b + "ffn_norm.weight", count: c.hiddenSize),
                ffnGate: try loader.matrix(b + "ffn_gate.weight", rows: c.ffnSize, columns: c.hiddenSize),
                ffnUp: try loader.matrix(b + "ffn_up.weight", rows: c.ffnSize, columns: c.hiddenSize),
                ffnDown: try loader.matrix(b + "ffn_down.weight", rows: c.hiddenSize, columns: c.ffnSize))
        }
        outputNorm = try loader.vector("output_norm.weight", count: c.hiddenSize)
        if file.hasTensor(named: "output.weight") {
            output = try loader.matrix("output.weight", rows: c.vocabSize, columns: c.hiddenSize)
        } else {
            output = tokenEmbedding
        }
        ropeFrequencyFactors = file.hasTensor(named: "rope_freqs.weight")
            ? try loader.vector("rope_freqs.weight", count: c.headDim / 2) : nil
    }

    /// Loads the model at `path` (memory-mapped).
    public convenience init(path: String) throws {
        let file = try GGUFFile(path: path)
        try self.init(file: file, config: try ModelConfig(gguf: file))
    }

    /// Writes the embedding of `token` (dequantized row of `token_embd.weight`) to `into`.
    func embed(token: Int, into: UnsafeMutablePointer<Float>) {
        let m = tokenEmbedding
        let rowBytes = m.type.byteCount(elements: m.columns)
        tk_dequantize_row(Int32(m.type.rawValue), m.data + token * rowBytes, into, Int64(m.columns))
    }
}

/// Finds tensors by name and checks their shapes against the config.
private struct TensorLoader {
    let file: GGUFFile

    func info(_ name: String, shape: [Int]) throws -> GGUFTensorInfo {
        guard file.hasTensor(named: name) else { throw EngineError.missingTensor(name) }
        let t = try file.tensor(named: name)
        guard t.shape == shape else {
            throw EngineError.tensorShapeMismatch(name: name, expected: shape, found: t.shape)
        }
        return t
    }

    /// GGUF lists the row length first: a matrix of `rows` × `columns` has shape [columns, rows].
    func matrix(_ name: String, rows: Int, columns: Int) throws -> WeightMatrix {
        let t = try info(name, shape: [columns, rows])
        guard tk_matmul_supports(Int32(t.type.rawValue)) != 0 else {
            throw EngineError.unsupportedTensorType(name: name, type: "\(t.type)")
        }
        let bytes = file.data(for: t)
        return WeightMatrix(name: name, type: t.type, data: bytes.baseAddress!, rows: rows, columns: columns)
    }

    func vector(_ name: String, count: Int) throws -> [Float] {
        try file.floats(for: try info(name, shape: [count]))
    }
}
