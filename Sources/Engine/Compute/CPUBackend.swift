import CKernels
import Foundation

/// The forward-pass operations on the CPU: C kernels (runtime-dispatched SIMD) on a pool of
/// `threadCount` threads.
public final class CPUBackend: ComputeBackend {
    public let threadCount: Int
    let pool: OpaquePointer

    /// `kernels`: `.auto` follows the process-wide choice (`CPUKernels`); another path is used
    /// by this backend alone (tests comparing paths). Throws when this CPU cannot run it.
    public init(threads: Int, kernels: CPUKernelPath = .auto) throws {
        threadCount = max(1, threads)
        guard let pool = tk_pool_create(Int32(threadCount)) else {
            throw EngineError.kernelFailed("cannot start \(threadCount) compute threads")
        }
        if kernels != .auto && tk_pool_set_backend(pool, kernels.rawValue) != 0 {
            tk_pool_destroy(pool)
            throw CPUKernels.unsupported(kernels, source: "cpu kernels '\(kernels)'")
        }
        self.pool = pool
    }

    /// The kernels this backend runs ("avx512-vnni", "avx2-vnni", "avx2-maddubs", "portable").
    public var kernels: String { String(cString: tk_pool_backend(pool)) }

    deinit { tk_pool_destroy(pool) }

    public func matmul(_ weight: WeightMatrix, input: UnsafePointer<Float>, rows: Int,
                       output: UnsafeMutablePointer<Float>) throws {
        let status = tk_matmul(pool, Int32(weight.type.rawValue), weight.data, Int64(weight.rows),
                               Int64(weight.columns), input, Int64(rows), output)
        if status != 0 {
            throw EngineError.kernelFailed("matrix product with '\(weight.name)' (\(weight.type)) returned \(status)")
        }
    }

    /// One pool job for all the products (`tk_matmul_many`): the pool's threads meet once per
    /// group instead of once per weight, and the input is quantized once.
    public func matmul(_ weights: [WeightMatrix], input: UnsafePointer<Float>, rows: Int,
                       outputs: [UnsafeMutablePointer<Float>]) throws {
        precondition(weights.count == outputs.count, "one output per weight")
        let groupSize = Int(TK_MATMUL_MAX_PARTS)
        for start in stride(from: 0, to: weights.count, by: groupSize) {
            let group = weights[start..<min(start + groupSize, weights.count)]
            let columns = group.first!.columns
            if let other = group.first(where: { $0.columns != columns }) {
                throw EngineError.kernelFailed("'\(other.name)' has \(other.columns) columns where '\(group.first!.name)' has \(columns): one input cannot feed both")
            }
            let types = group.map { Int32($0.type.rawValue) }
            let data: [UnsafeRawPointer?] = group.map { $0.data }
            let counts = group.map { Int64($0.rows) }
            let targets: [UnsafeMutablePointer<Float>?] = Array(outputs[start..<start + group.count])
            let status = tk_matmul_many(pool, Int32(group.count), types, data, counts, Int64(columns), input,
                                        Int64(rows), targets)
            if status != 0 {
                let names = group.map { "'\($0.name)' (\($0.type))" }.joined(separator: ", ")
                throw EngineError.kernelFailed("matrix products with \(names) returned \(status)")
            }
        }
    }

    public func rmsNorm(_ input: UnsafePointer<Float>, weight: [Float], output: UnsafeMutablePointer<Float>,
                        rows: Int, epsilon: Float) {
        tk_rmsnorm(pool, input, weight, output, Int32(rows), Int32(weight.count), epsilon)
    }

    public func rope(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, tables: RopeTables, style: RopeStyle) {
        tk_rope_apply(pool, x, Int32(rows), Int32(heads), Int32(tables.headDim), tables.cos, tables.sin,
                      style == .neoxHalves ? 1 : 0)
    }

    public func attention(query: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                          cache: KVCache, layer: Int, plan: AttentionPlan, headCount: Int) {
        let layout = cache.layout
        plan.rowStart.withUnsafeBufferPointer { rowStart in
        plan.positionStart.withUnsafeBufferPointer { positionStart in
        plan.blockTables.withUnsafeBufferPointer { tables in
        plan.tableStart.withUnsafeBufferPointer { tableStart in
            var args = tk_attention_args(
                q: query, out: output, kv_layer: UnsafeRawPointer(cache.layerBase(layer)),
                n_heads: Int32(headCount), n_kv_heads: Int32(layout.kvHeads),
                head_dim: Int32(layout.headDim), block_size: Int32(layout.blockSize),
                n_seqs: Int32(positionStart.count), row_start: rowStart.baseAddress,
                pos_start: positionStart.baseAddress, block_table: tables.baseAddress,
                table_start: tableStart.baseAddress, scale: 1 / Float(layout.headDim).squareRoot(),
                kv_f16: layout.dataType == .float16 ? 1 : 0)
            tk_attention(pool, &args)
        }}}}
    }

    public func swiglu(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        tk_swiglu(pool, gate, up, count)
    }

    public func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
        tk_add(pool, y, x, count)
    }

    public func addBias(_ y: UnsafeMutablePointer<Float>, bias: [Float], rows: Int) {
        tk_add_bias(pool, y, bias, Int32(rows), Int32(bias.count))
    }
}
