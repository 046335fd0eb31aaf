import Foundation

/// An independent, deliberately plain float64 forward pass for checking the engine: no KV
/// cache, no batching, no shared code with the fast path. Every position of one sequence is
/// recomputed from scratch.
struct ReferenceTransformer {
    enum Rope { case interleaved, neox }

    var layers: Int
    var hidden: Int
    var heads: Int
    var kvHeads: Int
    var headDim: Int
    var ffn: Int
    var vocab: Int
    var ropeBase: Double
    var epsilon: Double
    var rope: Rope
    /// Dequantized tensors by GGUF name, each row-major [rows][columns] (vectors plain).
    var tensors: [String: [Double]]

    func tensor(_ name: String) -> [Double] {
        guard let t = tensors[name] else { fatalError("reference model lacks \(name)") }
        return t
    }

    /// y = W x for W with `rows` rows of x.count columns.
    func linear(_ w: [Double], _ x: [Double], rows: Int) -> [Double] {
        let k = x.count
        return (0..<rows).map { r in
            var sum = 0.0
            for c in 0..<k { sum += w[r * k + c] * x[c] }
            return sum
        }
    }

    func rmsNorm(_ x: [Double], _ w: [Double]) -> [Double] {
        let meanSquare = x.reduce(0) { $0 + $1 * $1 } / Double(x.count)
        let scale = 1 / (meanSquare + epsilon).squareRoot()
        return zip(x, w).map { $0 * scale * $1 }
    }

    func rotate(_ v: inout [Double], head: Int, position: Int) {
        let base = head * headDim
        for i in 0..<headDim / 2 {
            let angle = Double(position) * pow(ropeBase, -2 * Double(i) / Double(headDim))
            let (a, b) = rope == .interleaved ? (base + 2 * i, base + 2 * i + 1) : (base + i, base + i + headDim / 2)
            let x0 = v[a], x1 = v[b]
            v[a] = x0 * cos(angle) - x1 * sin(angle)
            v[b] = x0 * sin(angle) + x1 * cos(angle)
        }
    }

    /// Logits for every position of `tokens`.
    func logits(_ tokens: [Int]) -> [[Double]] {
        let embedding = tensor("token_embd.weight")
        var xs: [[Double]] = tokens.map { Array(embedding[$0 * hidden ..< ($0 + 1) * hidden]) }
        let group = heads / kvHeads

        for l in 0..<layers {
            let p = "blk.\(l)."
            var qs: [[Double]] = [], ks: [[Double]] = [], vs: [[Double]] = []
            for (t, x) in xs.enumerated() {
                let h = rmsNorm(x, tensor(p + "attn_norm.weight"))
                var q = linear(tensor(p + "attn_q.weight"), h, rows: heads * headDim)
                var k = linear(tensor(p + "attn_k.weight"), h, rows: kvHeads * headDim)
                var v = linear(tensor(p + "attn_v.weight"), h, rows: kvHeads * headDim)
                if let b = tensors[p + "attn_q.bias"] { q = zip(q, b).map(+) }
                if let b = tensors[p + "attn_k.bias"] { k = zip(k, b).map(+) }
                if let b = tensors[p + "attn_v.bias"] { v = zip(v, b).map(+) }
                for hd in 0..<heads { rotate(&q, head: hd, position: t) }
                for hd in 0..<kvHeads { rotate(&k, head: hd, position: t) }
                qs.append(q); ks.append(k); vs.append(v)
            }
            for t in 0..<xs.count {
                var attended = [Double](repeating: 0, count: heads * headDim)
                for hd in 0..<heads {
                    let kv = hd / group
                    let scores = (0...t).map { s in
                        (0..<headDim).reduce(0.0) { $0 + qs[t][hd * headDim + $1] * ks[s][kv * headDim + $1] }
                            / Double(headDim).squareRoot()
                    }
                    let top = scores.max()!
                    let weights = scores.map { exp($0 - top) }
                    let total = weights.reduce(0, +)
                    for s in 0...t {
                        for d in 0..<headDim {
                            attended[hd * headDim + d] += weights[s] / total * vs[s][kv * headDim + d]
                        }
                    }
                }
                let o = linear(tensor(p + "attn_output.weight"), attended, rows: hidden)
                xs[t] = zip(xs[t], o).map(+)
                let h = rmsNorm(xs[t], tensor(p + "ffn_norm.weight"))
                let g = linear(tensor(p + "ffn_gate.weight"), h, rows: ffn)
                let u = linear(tensor(p + "ffn_up.weight"), h, rows: ffn)
                let a = zip(g, u).map { g, u in g / (1 + exp(-g)) * u }
                let d = linear(tensor(p + "ffn_down.weight"), a, rows: hidden)
                xs[t] = zip(xs[t], d).map(+)
            }
        }
        let output = tensors["output.weight"] ?? embedding
        return xs.map { linear(output, rmsNorm($0, tensor("output_norm.weight")), rows: vocab) }
    }
}

/// ‖a − b‖ / ‖b‖.
func relativeL2Error(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var diff = 0.0, norm = 0.0
    for (x, y) in zip(a, b) {
        diff += (x - y) * (x - y)
        norm += y * y
    }
    return (diff / norm).squareRoot()
}
