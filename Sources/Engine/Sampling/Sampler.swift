#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Picks tokens from logits for one sequence. The order of steps follows vLLM: penalties,
/// temperature, min-p, top-k, top-p, then a draw from what is left (renormalized).
/// Holds the sequence's random generator, so each sequence owns one sampler.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var generator: Xoshiro256StarStar
    private var work: [Float] = []
    private var candidates: [Int32] = []

    public init(parameters: SamplingParameters) throws {
        try parameters.validate()
        self.parameters = parameters
        var system = SystemRandomNumberGenerator()
        generator = Xoshiro256StarStar(seed: parameters.seed ?? system.next())
    }

    /// `output`: the tokens generated so far (presence, frequency and repetition penalties);
    /// `prompt`: the prompt's tokens (repetition penalty only).
    public mutating func sample(logits: UnsafeBufferPointer<Float>, history output: [Int32], prompt: [Int32] = []) -> SampledToken {
        penalize(logits, output: output, prompt: prompt)
        let token = parameters.isGreedy ? Self.argmax(work) : draw()
        guard let alternatives = parameters.logprobs else {
            return SampledToken(token: token, logprob: nil, topLogprobs: [])
        }
        return Self.report(token: token, logits: logits, alternatives: alternatives)
    }

    public mutating func sample(logits: [Float], history output: [Int32], prompt: [Int32] = []) -> SampledToken {
        logits.withUnsafeBufferPointer { sample(logits: $0, history: output, prompt: prompt) }
    }

    /// The distribution `sample` draws the next token from, for the same arguments: every token
    /// left after penalties, temperature, min-p, top-k and top-p, with its renormalized
    /// probability, most likely first (among equals, the lower id). Draws nothing.
    public mutating func distribution(logits: [Float], history output: [Int32], prompt: [Int32] = [])
        -> [(token: Int32, probability: Double)] {
        logits.withUnsafeBufferPointer { penalize($0, output: output, prompt: prompt) }
        var kept: [(token: Int32, probability: Double)]
        switch parameters.isGreedy ? Kept.only(Self.argmax(work)) : filter() {
        case .only(let token):
            kept = [(token: token, probability: 1)]
        case .everyToken(let mass):
            kept = work.indices.filter { work[$0] > 0 }.map { (token: Int32($0), probability: Double(work[$0]) / mass) }
        case .candidates(let mass):
            kept = candidates.map { (token: $0, probability: Double(work[Int($0)]) / mass) }
        }
        kept.sort { $0.probability > $1.probability || ($0.probability == $1.probability && $0.token < $1.token) }
        return kept
    }

    /// `work` = the logits with the penalties applied.
    private mutating func penalize(_ logits: UnsafeBufferPointer<Float>, output: [Int32], prompt: [Int32]) {
        precondition(!logits.isEmpty, "sampling from empty logits")
        work.removeAll(keepingCapacity: true)
        work.append(contentsOf: logits)
        let parameters = parameters
        work.withUnsafeMutableBufferPointer {
            Penalties.apply(to: $0, parameters: parameters, output: output, prompt: prompt)
        }
    }

    /// The first index of the largest value (NaN never wins).
    static func argmax(_ values: [Float]) -> Int32 {
        var best = 0
        for i in 1..<values.count where values[i] > values[best] || values[best].isNaN { best = i }
        return Int32(best)
    }

    /// What is left to draw from after temperature and the filters, with the unnormalized
    /// probabilities in `work`.
    private enum Kept {
        /// One token for certain.
        case only(Int32)
        /// Every token with a probability above 0, in index order.
        case everyToken(mass: Double)
        /// The tokens in `candidates`, most likely first.
        case candidates(mass: Double)
    }

    /// A draw from `work` (penalized logits) after temperature and the filters.
    private mutating func draw() -> Int32 {
        switch filter() {
        case .only(let token):
            return token
        case .everyToken(let mass):
            return drawInOrder(total: mass)
        case .candidates(let mass):
            let u = generator.nextUnit() * mass
            var cumulative: Double = 0
            for c in candidates {
                cumulative += Double(work[Int(c)])
                if u < cumulative { return c }
            }
            return candidates[candidates.count - 1]
        }
    }

    /// Temperature and filters on `work` (penalized logits).
    private mutating func filter() -> Kept {
        let inverseTemperature = 1 / parameters.temperature
        var maximum = -Float.infinity
        for v in work where v > maximum { maximum = v }
        guard maximum.isFinite else { return .only(Self.argmax(work)) }
        // Unnormalized probabilities: exp((logit - max) / T); the most likely token has 1.
        let total = work.withUnsafeMutableBufferPointer { w in
            var sum: Double = 0
            for i in w.indices {
                let p = exp((w[i] - maximum) * inverseTemperature)
                w[i] = p.isNaN ? 0 : p
                sum += Double(w[i])
            }
            return sum
        }
        // min-p relative to the most likely (1), and top-p's exactness bound: tokens below
        // (1 - p) / vocabulary of the mass together hold less than 1 - p, so the nucleus never
        // reaches them and they need not be sorted.
        let minP = parameters.minP
        if parameters.topK == 0 && parameters.topP == 1 {
            var kept = total
            if minP > 0 {
                kept = work.withUnsafeMutableBufferPointer { w in
                    var sum: Double = 0
                    for i in w.indices {
                        if w[i] < minP { w[i] = 0 }
                        sum += Double(w[i])
                    }
                    return sum
                }
            }
            return .everyToken(mass: kept)
        }
        var threshold = minP
        if parameters.topP < 1 {
            threshold = max(threshold, Float((1 - Double(parameters.topP)) * total / Double(work.count)))
            if parameters.topK == 0 { threshold = max(threshold, nucleusBound()) }
        }
        collectCandidates(above: threshold)
        if parameters.topK > candidates.count && threshold > minP {
            // Top-k then reaches below the top-p bound: its mass needs every token it keeps.
            collectCandidates(above: minP)
        }
        let work = work
        if parameters.topK > 0 && candidates.count > parameters.topK {
            keepLargest(parameters.topK, of: work)
        }
        candidates.sort { Self.ranksBefore($0, $1, work) }
        // Top-p's share is of the mass left after min-p and top-k (which the prefilter does
        // not change).
        var mass: Double = 0
        if parameters.topK > 0 {
            for c in candidates { mass += Double(work[Int(c)]) }
        } else {
            for p in work where p >= minP { mass += Double(p) }
        }
        if parameters.topP < 1 {
            // Keep the shortest prefix whose share of the (top-k) mass reaches top-p.
            var cumulative: Double = 0
            var keep = 0
            while keep < candidates.count {
                cumulative += Double(work[Int(candidates[keep])])
                keep += 1
                if cumulative >= Double(parameters.topP) * mass { break }
            }
            candidates.removeLast(candidates.count - keep)
            mass = cumulative
        }
        return .candidates(mass: mass)
    }

    /// A probability the nucleus never goes below (top-p without top-k): the largest of
    /// 1/2, 1/4, … such that the tokens at or above it already hold top-p of the mass left
    /// after min-p. Sorting then covers those tokens only; each try is one pass over `work`.
    private func nucleusBound() -> Float {
        let minP = parameters.minP
        return work.withUnsafeBufferPointer { w in
            var mass: Double = 0
            for p in w where p >= minP { mass += Double(p) }
            let target = Double(parameters.topP) * mass
            var bound: Float = 0.5
            while bound > 1e-30 {
                var above: Double = 0
                for p in w where p >= bound && p >= minP { above += Double(p) }
                if above >= target { return bound }
                bound *= 0.25
            }
            return 0
        }
    }

    /// Higher probability first; among equals, the lower token id.
    private static func ranksBefore(_ a: Int32, _ b: Int32, _ p: [Float]) -> Bool {
        p[Int(a)] > p[Int(b)] || (p[Int(a)] == p[Int(b)] && a < b)
    }

    /// Leaves in `candidates` (unordered) its k best by `ranksBefore`: a min-heap of k,
    /// O(n log k) instead of sorting all n.
    private mutating func keepLargest(_ k: Int, of p: [Float]) {
        candidates.withUnsafeMutableBufferPointer { c in
            func siftDown(_ start: Int) {
                var i = start
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var worst = i
                    if l < k && Self.ranksBefore(c[worst], c[l], p) { worst = l }
                    if r < k && Self.ranksBefore(c[worst], c[r], p) { worst = r }
                    if worst == i { return }
                    c.swapAt(i, worst)
                    i = worst
                }
            }
            for i in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(i) }
            for j in k..<c.count where Self.ranksBefore(c[j], c[0], p) {
                c[0] = c[j]
                siftDown(0)
            }
        }
        candidates.removeLast(candidates.count - k)
    }

    private mutating func collectCandidates(above threshold: Float) {
        candidates.removeAll(keepingCapacity: true)
        for i in work.indices where work[i] >= threshold && work[i] > 0 { candidates.append(Int32(i)) }
    }

    /// Inverse-CDF draw over every token in index order (no sorting needed).
    private mutating func drawInOrder(total: Double) -> Int32 {
        let u = generator.nextUnit() * total
        var cumulative: Double = 0
        var last = 0
        for i in work.indices where work[i] > 0 {
            cumulative += Double(work[i])
            last = i
            if u < cumulative { return Int32(i) }
        }
        return Int32(last)
    }

    /// Log-probabilities under the raw logits: the chosen token's and the top alternatives.
    static func report(token: Int32, logits: UnsafeBufferPointer<Float>, alternatives: Int) -> SampledToken {
        var maximum = -Float.infinity
        for v in logits where v > maximum { maximum = v }
        var sum: Double = 0
        for v in logits { sum += Double(exp(v - maximum)) }
        let logSum = Float(log(sum)) + maximum
        var top: [TokenLogprob] = []
        if alternatives > 0 {
            // Insertion into a short sorted list: O(vocabulary × alternatives), alternatives ≤ 20.
            var best: [(logit: Float, token: Int32)] = []
            best.reserveCapacity(alternatives + 1)
            for (i, v) in logits.enumerated() where best.count < alternatives || v > best[best.count - 1].logit {
                var at = best.count
                while at > 0 && best[at - 1].logit < v { at -= 1 }
                best.insert((v, Int32(i)), at: at)
                if best.count > alternatives { best.removeLast() }
            }
            top = best.map { TokenLogprob(token: $0.token, logprob: $0.logit - logSum) }
        }
        return SampledToken(token: token, logprob: logits[Int(token)] - logSum, topLogprobs: top)
    }
}
