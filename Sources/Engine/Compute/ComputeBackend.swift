/// The operations a forward step needs, behind one small interface so that another device
/// can implement them later. Buffers are row-major float32; `rows` is the number of tokens.
/// The CPU backend (`CPUBackend`) is the real one.
public protocol ComputeBackend: AnyObject {
    var threadCount: Int { get }

    /// output[r][n] = Σₖ input[r][k] · weight[n][k] for every row r.
    func matmul(_ weight: WeightMatrix, input: UnsafePointer<Float>, rows: Int,
                output: UnsafeMutablePointer<Float>) throws

    /// outputs[p] = the product of `input` with weights[p], for several weights that share one
    /// input (a layer's query, key and value; gate and up): the same results as one `matmul`
    /// each, which a backend may run as a single job.
    func matmul(_ weights: [WeightMatrix], input: UnsafePointer<Float>, rows: Int,
                outputs: [UnsafeMutablePointer<Float>]) throws

    func rmsNorm(_ input: UnsafePointer<Float>, weight: [Float], output: UnsafeMutablePointer<Float>,
                 rows: Int, epsilon: Float)

    /// Rotates `heads` heads per row, row r at the angle table row r.
    func rope(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, tables: RopeTables, style: RopeStyle)

    /// Causal attention of `query` rows against `cache`'s layer `layer`, per `plan`.
    func attention(query: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                   cache: KVCache, layer: Int, plan: AttentionPlan, headCount: Int)

    /// gate = silu(gate) · up.
    func swiglu(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count: Int)

    /// y += x.
    func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int)

    /// Adds `bias` to each of `rows` rows.
    func addBias(_ y: UnsafeMutablePointer<Float>, bias: [Float], rows: Int)
}

extension ComputeBackend {
    public func matmul(_ weights: [WeightMatrix], input: UnsafePointer<Float>, rows: Int,
                       outputs: [UnsafeMutablePointer<Float>]) throws {
        for (weight, output) in zip(weights, outputs) {
            try matmul(weight, input: input, rows: rows, output: output)
        }
    }
}

/// cos/sin of every rotation angle for the positions of one step: `[rows][headDim / 2]`.
public struct RopeTables {
    public let headDim: Int
    public var cos: [Float]
    public var sin: [Float]
}

/// Which query rows belong to which sequence, where each starts, and its block table.
public struct AttentionPlan {
    /// rowStart[s] ..< rowStart[s + 1] are sequence s's rows; count = sequences + 1.
    public var rowStart: [Int32]
    public var positionStart: [Int32]
    /// Block tables of all sequences, concatenated; sequence s's starts at tableStart[s].
    public var blockTables: [Int32]
    public var tableStart: [Int32]

    public init(batch: ForwardBatch) {
        rowStart = [0]
        positionStart = []
        blockTables = []
        tableStart = []
        for s in batch.sequences {
            rowStart.append(rowStart.last! + Int32(s.tokens.count))
            positionStart.append(Int32(s.startPosition))
            tableStart.append(Int32(blockTables.count))
            blockTables.append(contentsOf: s.blockTable)
        }
    }
}
