// The same Q4_1 × 8-bit-activation product as tk_matmul's, written in plain Swift with SIMD
// types, to decide between a Swift kernel built for the host CPU and the C target with runtime
// dispatch (BENCHMARKS.md, "Kernels"). Built twice by swift_compare.sh: baseline x86-64 and
// -target-cpu znver4. One thread; weights of shape n × k; m activation rows.
#if canImport(Glibc)
import Glibc
#endif

struct Rng {
    var s: UInt64 = 0x9E37_79B9_7F4A_7C15
    mutating func next() -> UInt64 { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s }
}

/// Q4_1 blocks of 20 bytes (fp16 d, fp16 m, 16 bytes of nibbles) and quantized activations.
@inline(never)
func product(w: UnsafePointer<UInt8>, n: Int, k: Int, xq: UnsafePointer<Int8>, xd: UnsafePointer<Float>,
             xs: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>) {
    let nb = k / 32
    for j in 0..<m {
        for i in 0..<n {
            var acc: Float = 0
            for b in 0..<nb {
                let blk = w + (i * nb + b) * 20
                let d = Float(Float16(bitPattern: UInt16(blk[0]) | UInt16(blk[1]) << 8))
                let mn = Float(Float16(bitPattern: UInt16(blk[2]) | UInt16(blk[3]) << 8))
                let qs = UnsafeRawPointer(blk + 4).loadUnaligned(as: SIMD16<UInt8>.self)
                let lo = SIMD16<Int16>(truncatingIfNeeded: qs & 0x0F), hi = SIMD16<Int16>(truncatingIfNeeded: qs &>> 4)
                let xv = UnsafeRawPointer(xq + j * k + b * 32).loadUnaligned(as: SIMD32<Int8>.self)
                let x0 = SIMD16<Int16>(truncatingIfNeeded: xv.lowHalf), x1 = SIMD16<Int16>(truncatingIfNeeded: xv.highHalf)
                let s = SIMD16<Int32>(truncatingIfNeeded: lo &* x0) &+ SIMD16<Int32>(truncatingIfNeeded: hi &* x1)
                acc += d * xd[j * nb + b] * Float(s.wrappedSum()) + mn * xs[j * nb + b]
            }
            y[j * n + i] = acc
        }
    }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func rounded(_ v: Double) -> Double { (v * 100).rounded() / 100 }

var rng = Rng()
for (n, k) in [(576, 576), (1536, 576)] {
    let nb = k / 32
    let w = UnsafeMutablePointer<UInt8>.allocate(capacity: n * nb * 20)
    for i in 0..<(n * nb * 20) { w[i] = UInt8(truncatingIfNeeded: rng.next()) }
    for b in 0..<(n * nb) { w[b * 20 + 1] = 0x20; w[b * 20 + 3] = 0x20 } // finite fp16 scales
    for m in [1, 512] {
        let xq = UnsafeMutablePointer<Int8>.allocate(capacity: m * k)
        for i in 0..<(m * k) { xq[i] = Int8(truncatingIfNeeded: rng.next()) }
        let xd = UnsafeMutablePointer<Float>.allocate(capacity: m * nb), xs = UnsafeMutablePointer<Float>.allocate(capacity: m * nb)
        for i in 0..<(m * nb) { xd[i] = 0.01; xs[i] = 0.1 }
        let y = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        let reps = max(3, Int(2e8 / Double(2 * n * k * m)))
        var best = 1e9
        for _ in 0..<3 {
            let t0 = now()
            for _ in 0..<reps { product(w: w, n: n, k: k, xq: xq, xd: xd, xs: xs, m: m, y: y) }
            best = min(best, (now() - t0) / Double(reps))
        }
        let gbs = Double(n * nb * 20) / best * 1e-9, gflops = Double(2 * n * k * m) / best * 1e-9
        print("swift q4_1 \(n)x\(k) m=\(m): \(rounded(best * 1e6)) us, \(rounded(gbs)) GB/s, \(rounded(gflops)) GFLOP/s")
    }
}
