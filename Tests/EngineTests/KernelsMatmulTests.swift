import CKernels
import Foundation
import Testing
import TestSupport

/// tk_matmul against a float64 product of tk_dequantize_row'd weights and the f32 activations.
///
/// Tolerance: quantized types round each activation to 8 bits per block of 32 (step amax/127),
/// an error uniform in ±step/2; for the uniform activations used here that is a relative RMS
/// error of (1/127)/√12/0.577 ≈ 4e-3 per element, and about the same for the product's
/// relative L2 error. 1e-2 allows for that with margin while any layout mistake (a swapped
/// nibble, a wrong scale) gives errors of order 1. Float weights accumulate in f32: 1e-5.
@Suite struct KernelsMatmulTests {
    static let quantizedTypes: [KernelType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K]
    static let floatTypes: [KernelType] = [.f32, .f16, .bf16]
    /// CKernels' SIMD paths, best last, with the CPU features each needs (as its dispatch in
    /// matmul.c checks them, named as /proc/cpuinfo lists them). A new path is one line here.
    /// The AVX2 path comes in two product variants: vpmaddubsw, and AVX-VNNI where the CPU has it.
    static let simdBackends: [(name: String, cpuFlags: [String])] = [
        ("avx2-maddubs", ["avx2", "fma", "f16c"]),
        ("avx2-vnni", ["avx2", "fma", "f16c", "avx_vnni"]),
        ("avx512-vnni", ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx2", "f16c", "fma"]),
    ]

    /// The flags of this CPU in /proc/cpuinfo.
    static let cpuFlags: Set<String> = {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
        return Set(line.split(separator: " ").map(String.init))
    }()

    /// Every kernel path this CPU can run: the portable C, then each SIMD path it supports.
    static let backends = ["portable"] + simdBackends.filter { $0.cpuFlags.allSatisfy(cpuFlags.contains) }.map(\.name)

    /// Fails unless the products ran on every path this CPU supports: a machine with AVX-512
    /// whose tests exercised only the portable C proves nothing about the SIMD kernels.
    static func expectEveryBackendRan(_ ran: Set<String>, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(ran == Set(backends), "\(what) ran on \(ran.sorted()) but this CPU supports \(backends)", sourceLocation: sourceLocation)
    }

    /// Row lengths k to test: an odd block count (padding), and one above 64 blocks (two staged
    /// segments).
    static func rowLengths(_ type: KernelType) -> [Int] {
        type.blockSize == 256 ? [768, 2304] : (type.blockSize == 32 ? [608, 2304] : [601, 2304])
    }

    @Test(arguments: quantizedTypes + floatTypes)
    func matchesFloat64Reference(type: KernelType) throws {
        let pool = try #require(tk_pool_create(2))
        defer { tk_pool_destroy(pool) }
        // n = 37: not a multiple of the thread count, the 4-row tile or the 16-row chunk.
        var ran: Set<String> = []
        for backend in Self.backends {
            try #require(tk_pool_set_backend(pool, backend) == 0, "CKernels refuses the \(backend) kernels")
            ran.insert(backend)
            for k in Self.rowLengths(type) {
                var rng = KernelsRng(seed: UInt64(Int(type.rawValue) * 1000 + k))
                let n = 37
                let w = type.randomWeights(rows: n, k: k, rng: &rng)
                let reference = try KernelsReference(type: type, weights: w, rows: n, k: k)
                for m in [1, 3, 6, 17, 64] { // fused kernels up to 16 rows (passes of 8 on AVX-512, 4 on AVX2), staged above
                    let x = (0..<(m * k)).map { _ in Float(rng.unit()) }
                    var y = [Float](repeating: .nan, count: m * n)
                    let rc = w.withUnsafeBytes { wp in tk_matmul(pool, type.rawValue, wp.baseAddress, Int64(n), Int64(k), x, Int64(m), &y) }
                    #expect(rc == 0)
                    let error = kernelsRelativeL2(y, reference.times(x, m: m))
                    let tolerance = type.blockSize == 1 ? 1e-5 : 1e-2
                    #expect(error < tolerance, "\(type) \(backend) k=\(k) m=\(m): relative L2 error \(error)")
                }
            }
        }
        Self.expectEveryBackendRan(ran, "\(type) products")
    }

    /// Batch invariance: a row's result does not depend on how many other rows share the
    /// product (nor on which kernel path the row count selects), bit for bit. Batched decoding
    /// then produces exactly the tokens one sequence alone would.
    @Test(arguments: quantizedTypes + floatTypes)
    func eachRowEqualsItsProductAlone(type: KernelType) throws {
        let pool = try #require(tk_pool_create(2))
        defer { tk_pool_destroy(pool) }
        var ran: Set<String> = []
        for backend in Self.backends {
            try #require(tk_pool_set_backend(pool, backend) == 0, "CKernels refuses the \(backend) kernels")
            ran.insert(backend)
            for k in Self.rowLengths(type) {
                var rng = KernelsRng(seed: UInt64(Int(type.rawValue) * 7 + k))
                let n = 37, m = 70 // fused up to 16 rows, staged above; 70 spans two 64-row blocks
                let w = type.randomWeights(rows: n, k: k, rng: &rng)
                let x = (0..<(m * k)).map { _ in Float(rng.unit() - 0.5) }
                func product(_ rows: ArraySlice<Float>) -> [Float] {
                    let count = rows.count / k
                    var y = [Float](repeating: .nan, count: count * n)
                    let input = Array(rows)
                    let rc = w.withUnsafeBytes { wp in tk_matmul(pool, type.rawValue, wp.baseAddress, Int64(n), Int64(k), input, Int64(count), &y) }
                    #expect(rc == 0)
                    return y
                }
                let all = product(x[...])
                for (start, count) in [(0, 1), (5, 1), (69, 1), (3, 4), (10, 17), (0, 16)] {
                    let some = product(x[(start * k)..<((start + count) * k)])
                    let same = Array(all[(start * n)..<((start + count) * n)])
                    let difference = bitwiseDifference(some, same)
                    #expect(difference == nil, "\(type) \(backend) k=\(k): rows \(start)..<\(start + count) alone against the same rows among \(m): \(difference ?? "")")
                }
            }
        }
        Self.expectEveryBackendRan(ran, "\(type) batch invariance")
    }

    @Test(arguments: [KernelType.q4_1, .q8_0, .q6_K, .f16])
    func sameResultWithOneAndTwoThreads(type: KernelType) throws {
        let one = try #require(tk_pool_create(1)), two = try #require(tk_pool_create(2))
        defer { tk_pool_destroy(one); tk_pool_destroy(two) }
        #expect(tk_pool_threads(one) == 1 && tk_pool_threads(two) == 2)
        var rng = KernelsRng(seed: 7)
        let n = 101, k = type.blockSize == 256 ? 512 : 576, m = 17
        let w = type.randomWeights(rows: n, k: k, rng: &rng)
        let x = (0..<(m * k)).map { _ in Float(rng.unit()) }
        var y1 = [Float](repeating: 0, count: m * n), y2 = [Float](repeating: 1, count: m * n)
        var yNil = [Float](repeating: 2, count: m * n)
        w.withUnsafeBytes { wp in
            #expect(tk_matmul(one, type.rawValue, wp.baseAddress, Int64(n), Int64(k), x, Int64(m), &y1) == 0)
            #expect(tk_matmul(two, type.rawValue, wp.baseAddress, Int64(n), Int64(k), x, Int64(m), &y2) == 0)
            #expect(tk_matmul(nil, type.rawValue, wp.baseAddress, Int64(n), Int64(k), x, Int64(m), &yNil) == 0)
        }
        let twoThreads = bitwiseDifference(y2, y1), noPool = bitwiseDifference(yNil, y1)
        #expect(twoThreads == nil, "two threads against one: \(twoThreads ?? "")")
        #expect(noPool == nil, "no pool against one thread: \(noPool ?? "")")
    }

    /// tk_matmul_many (one pool job for several products of the same input, as a layer's
    /// query/key/value and gate/up run) gives each product bit for bit what tk_matmul gives it
    /// alone, on every path, with quantized and float weights mixed in one group.
    @Test func groupedProductsEqualEachProductAlone() throws {
        let pool = try #require(tk_pool_create(2))
        defer { tk_pool_destroy(pool) }
        let types: [KernelType] = [.q4_1, .q8_0, .f16, .q5_0], rows = [96, 40, 33, 17], k = 576
        var rng = KernelsRng(seed: 11)
        let weights = zip(types, rows).map { type, n in type.randomWeights(rows: n, k: k, rng: &rng) }
        var ran: Set<String> = []
        for backend in Self.backends {
            try #require(tk_pool_set_backend(pool, backend) == 0, "CKernels refuses the \(backend) kernels")
            ran.insert(backend)
            for m in [1, 5, 70] {
                let x = (0..<(m * k)).map { _ in Float(rng.unit() - 0.5) }
                var alone: [[Float]] = []
                for (p, w) in weights.enumerated() {
                    var y = [Float](repeating: .nan, count: m * rows[p])
                    let rc = w.withUnsafeBytes { wp in tk_matmul(pool, types[p].rawValue, wp.baseAddress, Int64(rows[p]), Int64(k), x, Int64(m), &y) }
                    #expect(rc == 0)
                    alone.append(y)
                }
                let outputs = rows.map { UnsafeMutablePointer<Float>.allocate(capacity: m * $0) }
                defer { outputs.forEach { $0.deallocate() } }
                let data = weights.map { w in w.withUnsafeBytes { UnsafeMutableRawPointer.allocate(byteCount: $0.count, alignment: 64) } }
                defer { data.forEach { $0.deallocate() } }
                for (p, w) in weights.enumerated() { w.withUnsafeBytes { data[p].copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
                let rc = tk_matmul_many(pool, Int32(types.count), types.map(\.rawValue), data.map { UnsafeRawPointer($0) },
                                        rows.map(Int64.init), Int64(k), x, Int64(m), outputs.map(Optional.some))
                #expect(rc == 0)
                for p in types.indices {
                    let grouped = Array(UnsafeBufferPointer(start: outputs[p], count: m * rows[p]))
                    let difference = bitwiseDifference(grouped, alone[p])
                    #expect(difference == nil, "\(types[p]) \(backend) m=\(m): grouped against alone: \(difference ?? "")")
                }
            }
        }
        Self.expectEveryBackendRan(ran, "grouped products")
        // Refused: no product, more than TK_MATMUL_MAX_PARTS, a k that is not a whole block of one part.
        let type = KernelType.q4_1.rawValue
        var y = [Float](repeating: 0, count: 64)
        let refused = weights[0].withUnsafeBytes { wp -> [Int32] in
            y.withUnsafeMutableBufferPointer { yp in
                let tooMany = Int(TK_MATMUL_MAX_PARTS) + 1
                return [
                    tk_matmul_many(pool, 0, [type], [wp.baseAddress], [1], 32, [Float](repeating: 0, count: 32), 1, [yp.baseAddress]),
                    tk_matmul_many(pool, Int32(tooMany), [Int32](repeating: type, count: tooMany),
                                   [UnsafeRawPointer?](repeating: wp.baseAddress, count: tooMany), [Int64](repeating: 1, count: tooMany),
                                   32, [Float](repeating: 0, count: 32), 1, [UnsafeMutablePointer<Float>?](repeating: yp.baseAddress, count: tooMany)),
                    tk_matmul_many(pool, 2, [type, KernelType.q4_K.rawValue], [wp.baseAddress, wp.baseAddress], [1, 1], 32,
                                   [Float](repeating: 0, count: 32), 1, [yp.baseAddress, yp.baseAddress]),
                ]
            }
        }
        #expect(refused == [-1, -1, -1])
    }

    @Test func rejectsUnsupportedTypesAndShapes() throws {
        let pool = try #require(tk_pool_create(2))
        defer { tk_pool_destroy(pool) }
        let w = [UInt8](repeating: 0, count: 4096)
        let x = [Float](repeating: 1, count: 512)
        var y = [Float](repeating: 0, count: 64)
        w.withUnsafeBytes { wp in
            // Q8_1 (9), Q2_K (10), Q3_K (11), Q8_K (15), IQ types and unknown ids.
            for type: Int32 in [9, 10, 11, 15, 16, 20, 29, 99, -1] {
                #expect(tk_matmul(pool, type, wp.baseAddress, 2, 256, x, 1, &y) == -1, "type \(type)")
                #expect(tk_matmul_supports(type) == 0)
            }
            #expect(tk_matmul(pool, KernelType.q4_1.rawValue, wp.baseAddress, 2, 48, x, 1, &y) == -1)  // k % 32
            #expect(tk_matmul(pool, KernelType.q4_K.rawValue, wp.baseAddress, 2, 160, x, 1, &y) == -1) // k % 256
            #expect(tk_matmul(pool, KernelType.f32.rawValue, wp.baseAddress, -1, 4, x, 1, &y) == -1)
            #expect(tk_matmul(pool, KernelType.f32.rawValue, wp.baseAddress, 2, 4, x, -3, &y) == -1)
        }
        #expect(tk_pool_set_backend(pool, "no-such-backend") == -1)
        for type in Self.quantizedTypes + Self.floatTypes { #expect(tk_matmul_supports(type.rawValue) == 1) }
    }

    @Test func zeroRowsOrColumnsWriteNothingOrZeros() throws {
        var y: [Float] = [5, 5, 5, 5]
        let x: [Float] = [1, 2]
        let w: [Float] = [1, 1, 1, 1]
        w.withUnsafeBytes { wp in
            #expect(tk_matmul(nil, 0, wp.baseAddress, 0, 2, x, 1, &y) == 0)
            #expect(tk_matmul(nil, 0, wp.baseAddress, 2, 2, x, 0, &y) == 0)
        }
        #expect(y == [5, 5, 5, 5])
        w.withUnsafeBytes { wp in #expect(tk_matmul(nil, 0, wp.baseAddress, 2, 0, x, 2, &y) == 0) }
        #expect(y == [0, 0, 0, 0])
    }

    /// The kernel sets agree with each other: the same quantized activations and exact integer
    /// block sums, so only the float accumulation order differs (relative L2 below 1e-5); the
    /// two AVX2 product variants (vpmaddubsw and AVX-VNNI) give the same bits.
    @Test(arguments: quantizedTypes + floatTypes)
    func pathsAgreeWithEachOther(type: KernelType) throws {
        let pool = try #require(tk_pool_create(2))
        defer { tk_pool_destroy(pool) }
        var rng = KernelsRng(seed: UInt64(type.rawValue) + 99)
        let n = 37, k = type.blockSize == 256 ? 768 : 608, m = 19
        let w = type.randomWeights(rows: n, k: k, rng: &rng)
        let x = (0..<(m * k)).map { _ in Float(rng.unit()) }
        var results: [String: [Float]] = [:]
        for backend in Self.backends {
            try #require(tk_pool_set_backend(pool, backend) == 0, "CKernels refuses the \(backend) kernels")
            #expect(String(cString: tk_pool_backend(pool)) == backend)
            var y = [Float](repeating: .nan, count: m * n)
            let rc = w.withUnsafeBytes { wp in tk_matmul(pool, type.rawValue, wp.baseAddress, Int64(n), Int64(k), x, Int64(m), &y) }
            #expect(rc == 0)
            results[backend] = y
        }
        Self.expectEveryBackendRan(Set(results.keys), "\(type) path agreement")
        let portable = try #require(results["portable"]).map(Double.init)
        for (backend, y) in results {
            let difference = kernelsRelativeL2(y, portable)
            #expect(difference < 1e-5, "\(type) \(backend) against portable: relative L2 \(difference)")
        }
        if let maddubs = results["avx2-maddubs"], let vnni = results["avx2-vnni"] {
            #expect(zip(maddubs, vnni).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(type)")
        }
    }

    /// CKernels' dispatch picks the best path this CPU supports (the last of `backends`), its
    /// own CPU checks agree with the table, a pool can be set to every supported path, and
    /// `auto` picks the fastest; an unsupported path is refused.
    @Test func dispatchPicksTheBestPathThisCPUSupports() throws {
        try #require(!Self.cpuFlags.isEmpty, "no CPU flags in /proc/cpuinfo")
        let chosen = String(cString: tk_cpu_backend())
        #expect(chosen == Self.backends.last, "CKernels chose \(chosen) where this CPU's best known path is \(Self.backends.last!) (a new path goes into simdBackends)")
        for (name, _) in Self.simdBackends {
            #expect((tk_cpu_supports_path(name) == 1) == Self.backends.contains(name), "\(name)")
        }
        #expect((tk_cpu_supports_path("avx512") == 1) == Self.backends.contains("avx512-vnni"))
        #expect((tk_cpu_supports_path("avx2") == 1) == Self.backends.contains("avx2-maddubs"))
        #expect(tk_cpu_supports_path("portable") == 1 && tk_cpu_supports_path("auto") == 1)
        #expect(tk_cpu_supports_path("avx3") == -1)
        let pool = try #require(tk_pool_create(1))
        defer { tk_pool_destroy(pool) }
        for backend in Self.backends { #expect(tk_pool_set_backend(pool, backend) == 0, "\(backend)") }
        #expect(tk_pool_set_backend(pool, "auto") == 0)
        #expect(String(cString: tk_pool_backend(pool)) == Self.backends.last)
        for path in ["avx512", "avx2"] where tk_cpu_supports_path(path) == 0 {
            #expect(tk_pool_set_backend(pool, path) == -1)
        }
    }
}

/// ggml type ids with their block geometry, and random (but finite, realistically scaled)
/// weights in each layout.
enum KernelType: Int32, CustomStringConvertible, Sendable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q4_K = 12, q5_K = 13, q6_K = 14, bf16 = 30

    var description: String { "\(self.name)" }
    var name: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .bf16: "BF16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        }
    }
    var blockSize: Int { Int(tk_type_block_size(rawValue)) }
    var blockBytes: Int { Int(tk_type_block_bytes(rawValue)) }

    /// Byte offsets of the fp16 scale fields in a block, and whether each may be negative.
    var halfFields: [(offset: Int, signed: Bool)] {
        switch self {
        case .q4_0, .q5_0, .q8_0: [(0, false)]
        case .q4_1, .q5_1: [(0, false), (2, true)]
        case .q4_K, .q5_K: [(0, false), (2, false)]
        case .q6_K: [(208, false)]
        case .f32, .f16, .bf16: []
        }
    }

    func randomWeights(rows: Int, k: Int, rng: inout KernelsRng) -> [UInt8] {
        let count = rows * k / blockSize * blockBytes
        var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        func putHalf(_ bits: UInt16, at offset: Int) {
            bytes[offset] = UInt8(bits & 0xff)
            bytes[offset + 1] = UInt8(bits >> 8)
        }
        switch self {
        case .f32:
            for i in 0..<(count / 4) {
                let v = Float(rng.unit()) * 0.1
                withUnsafeBytes(of: v.bitPattern.littleEndian) { for b in 0..<4 { bytes[4 * i + b] = $0[b] } }
            }
        case .f16:
            for i in 0..<(count / 2) { putHalf(rng.half(signed: true), at: 2 * i) }
        case .bf16:
            for i in 0..<(count / 2) { putHalf(UInt16((Float(rng.unit()) * 0.1).bitPattern >> 16), at: 2 * i) }
        default:
            for block in 0..<(count / blockBytes) {
                for field in halfFields { putHalf(rng.half(signed: field.signed), at: block * blockBytes + field.offset) }
            }
        }
        return bytes
    }
}

/// The weights dequantized once with tk_dequantize_row; products in Double.
struct KernelsReference {
    let rows: Int, k: Int
    let values: [Float]

    init(type: KernelType, weights: [UInt8], rows: Int, k: Int) throws {
        self.rows = rows
        self.k = k
        var values = [Float](repeating: 0, count: rows * k)
        let rowBytes = k / type.blockSize * type.blockBytes
        weights.withUnsafeBytes { wp in
            values.withUnsafeMutableBufferPointer { vp in
                for r in 0..<rows {
                    let rc = tk_dequantize_row(type.rawValue, wp.baseAddress! + r * rowBytes, vp.baseAddress! + r * k, Int64(k))
                    precondition(rc == 0)
                }
            }
        }
        self.values = values
    }

    func times(_ x: [Float], m: Int) -> [Double] {
        var y = [Double](repeating: 0, count: m * rows)
        for j in 0..<m {
            for i in 0..<rows {
                var acc = 0.0
                for l in 0..<k { acc += Double(values[i * k + l]) * Double(x[j * k + l]) }
                y[j * rows + i] = acc
            }
        }
        return y
    }
}

func kernelsRelativeL2(_ y: [Float], _ reference: [Double]) -> Double {
    var num = 0.0, den = 0.0
    for (a, b) in zip(y, reference) {
        num += (Double(a) - b) * (Double(a) - b)
        den += b * b
    }
    return (num / max(den, 1e-300)).squareRoot()
}

struct KernelsRng {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) * 2 - 1 }
    /// fp16 bits of a magnitude in [2^-8, 2^-4): the range of real block scales.
    mutating func half(signed: Bool) -> UInt16 {
        let exponent = UInt16(7 + next() % 4), mantissa = UInt16(next() & 0x3ff)
        let sign: UInt16 = signed && next() & 1 == 1 ? 0x8000 : 0
        return sign | exponent << 10 | mantissa
    }
}
