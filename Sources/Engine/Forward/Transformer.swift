/// The Llama-family forward pass over a batch of sequences and a paged KV cache.
///
/// All tokens of all sequences form one matrix of rows, so each weight matrix is read once
/// per step whatever the batch size; only attention looks at sequences one by one.
public final class Transformer {
    public let config: ModelConfig
    public let weights: ModelWeights
    public let backend: ComputeBackend

    private let x = ScratchBuffer()       // residual stream   [tokens][hidden]
    private let h = ScratchBuffer()       // normed / sublayer output [tokens][hidden]
    private let q = ScratchBuffer()       // [tokens][heads · headDim]
    private let k = ScratchBuffer()       // [tokens][kvHeads · headDim]
    private let v = ScratchBuffer()
    private let attended = ScratchBuffer() // [tokens][heads · headDim]
    private let gate = ScratchBuffer()    // [tokens][ffn]
    private let up = ScratchBuffer()
    private let logitRows = ScratchBuffer() // [logit rows][hidden]

    public init(weights: ModelWeights, backend: ComputeBackend) {
        self.config = weights.config
        self.weights = weights
        self.backend = backend
    }

    /// A KV cache shaped for this model.
    public func makeCache(blockSize: Int = 16, numBlocks: Int, dataType: KVCacheLayout.DataType = .float32) throws -> KVCache {
        try KVCache(layout: KVCacheLayout(config: config, blockSize: blockSize, numBlocks: numBlocks, dataType: dataType))
    }

    /// `afterLayerStored(l)` runs once layer l's keys and values of the batch are in the cache,
    /// while later layers are still to compute (PD: KV goes out layer by layer).
    public func forward(_ batch: ForwardBatch, cache: KVCache, afterLayerStored: ((Int) -> Void)? = nil) throws -> Logits {
        try validate(batch, cache: cache)
        let c = config
        let n = batch.tokenCount

        let x = self.x.reserve(n * c.hiddenSize), h = self.h.reserve(n * c.hiddenSize)
        let q = self.q.reserve(n * c.qSize), k = self.k.reserve(n * c.kvSize), v = self.v.reserve(n * c.kvSize)
        let attended = self.attended.reserve(n * c.qSize)
        let gate = self.gate.reserve(n * c.ffnSize), up = self.up.reserve(n * c.ffnSize)

        var positions: [Int32] = []
        positions.reserveCapacity(n)
        var row = 0
        for s in batch.sequences {
            for (i, token) in s.tokens.enumerated() {
                weights.embed(token: Int(token), into: x + row * c.hiddenSize)
                positions.append(Int32(s.startPosition + i))
                row += 1
            }
        }
        let rope = ropeTables(positions)
        let plan = AttentionPlan(batch: batch)

        for (l, layer) in weights.layers.enumerated() {
            // Attention block.
            backend.rmsNorm(x, weight: layer.attentionNorm, output: h, rows: n, epsilon: c.rmsEpsilon)
            try backend.matmul([layer.query, layer.key, layer.value], input: h, rows: n, outputs: [q, k, v])
            if let b = layer.queryBias { backend.addBias(q, bias: b, rows: n) }
            if let b = layer.keyBias { backend.addBias(k, bias: b, rows: n) }
            if let b = layer.valueBias { backend.addBias(v, bias: b, rows: n) }
            backend.rope(q, rows: n, heads: c.headCount, tables: rope, style: c.architecture.ropeStyle)
            backend.rope(k, rows: n, heads: c.kvHeadCount, tables: rope, style: c.architecture.ropeStyle)
            store(k, v, layer: l, batch: batch, cache: cache)
            afterLayerStored?(l)
            backend.attention(query: q, output: attended, cache: cache, layer: l, plan: plan, headCount: c.headCount)
            try backend.matmul(layer.attentionOutput, input: attended, rows: n, output: h)
            backend.add(x, h, count: n * c.hiddenSize)

            // Feed-forward block (SwiGLU).
            backend.rmsNorm(x, weight: layer.ffnNorm, output: h, rows: n, epsilon: c.rmsEpsilon)
            try backend.matmul([layer.ffnGate, layer.ffnUp], input: h, rows: n, outputs: [gate, up])
            backend.swiglu(gate: gate, up: up, count: n * c.ffnSize)
            try backend.matmul(layer.ffnDown, input: gate, rows: n, output: h)
            backend.add(x, h, count: n * c.hiddenSize)
        }

        return try logits(x, batch: batch)
    }

    /// Final norm and output projection for the rows the batch asks logits for.
    private func logits(_ x: UnsafeMutablePointer<Float>, batch: ForwardBatch) throws -> Logits {
        let c = config
        var rows: [Logits.Row] = []
        var sourceRows: [Int] = []
        var row = 0
        for (index, s) in batch.sequences.enumerated() {
            for i in 0..<s.tokens.count {
                let wanted = s.logits == .allTokens || (s.logits == .lastToken && i == s.tokens.count - 1)
                if wanted {
                    rows.append(Logits.Row(sequence: index, position: s.startPosition + i))
                    sourceRows.append(row)
                }
                row += 1
            }
        }
        let selected = logitRows.reserve(max(1, rows.count) * c.hiddenSize)
        for (i, source) in sourceRows.enumerated() {
            (selected + i * c.hiddenSize).update(from: x + source * c.hiddenSize, count: c.hiddenSize)
        }
        backend.rmsNorm(selected, weight: weights.outputNorm, output: selected, rows: rows.count, epsilon: c.rmsEpsilon)
        var values = [Float](repeating: 0, count: rows.count * c.vocabSize)
        if !rows.isEmpty {
            try values.withUnsafeMutableBufferPointer {
                try backend.matmul(weights.output, input: selected, rows: rows.count, output: $0.baseAddress!)
            }
        }
        return Logits(vocabSize: c.vocabSize, rows: rows, values: values)
    }

    private func store(_ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>, layer: Int,
                       batch: ForwardBatch, cache: KVCache) {
        var row = 0
        for s in batch.sequences {
            for i in 0..<s.tokens.count {
                cache.write(layer: layer, position: s.startPosition + i, blockTable: s.blockTable,
                            key: k + row * config.kvSize, value: v + row * config.kvSize)
                row += 1
            }
        }
    }

    private func ropeTables(_ positions: [Int32]) -> RopeTables {
        let half = config.headDim / 2
        var tables = RopeTables(headDim: config.headDim,
                                cos: [Float](repeating: 0, count: positions.count * half),
                                sin: [Float](repeating: 0, count: positions.count * half))
        computeRopeTables(positions: positions, headDim: config.headDim, base: config.ropeBase,
                          freqScale: config.ropeFreqScale, factors: weights.ropeFrequencyFactors,
                          cos: &tables.cos, sin: &tables.sin)
        return tables
    }

    private func validate(_ batch: ForwardBatch, cache: KVCache) throws {
        let layout = cache.layout
        guard layout.layers == config.layerCount, layout.kvHeads == config.kvHeadCount,
              layout.headDim == config.headDim else {
            throw EngineError.invalidBatch(
                "the KV cache (\(layout)) does not fit the model (\(config.layerCount) layers, \(config.kvHeadCount) KV heads × \(config.headDim))")
        }
        for (index, s) in batch.sequences.enumerated() {
            guard !s.tokens.isEmpty else { throw EngineError.invalidBatch("sequence \(index) has no tokens") }
            guard s.startPosition >= 0 else {
                throw EngineError.invalidBatch("sequence \(index) starts at negative position \(s.startPosition)")
            }
            if let bad = s.tokens.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
                throw EngineError.invalidBatch("sequence \(index) has token id \(bad) outside the vocabulary (\(config.vocabSize))")
            }
            let end = s.startPosition + s.tokens.count
            guard s.blockTable.count >= layout.blocksNeeded(forTokens: end) else {
                throw EngineError.invalidBatch(
                    "sequence \(index) needs \(layout.blocksNeeded(forTokens: end)) blocks for \(end) positions but its block table has \(s.blockTable.count)")
            }
            if let bad = s.blockTable.first(where: { $0 < 0 || Int($0) >= layout.numBlocks }) {
                throw EngineError.invalidBatch("sequence \(index) uses block \(bad) outside the cache (\(layout.numBlocks) blocks)")
            }
        }
    }
}
