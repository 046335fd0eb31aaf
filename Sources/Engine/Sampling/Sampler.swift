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
        precondition(!logits.isEmpty, "sampling from empty logits")
        work.removeAll(keepingCapacity: true)
        work.append(contentsOf: logits)
        let parameters = parameters
        work.withUnsafeMutableBufferPointer {
            Penalties.apply(to: $0, parameters: parameters, output: output, prompt: prompt)
        }
        let token = parameters.isGreedy ? Self.argmax(work) : draw()
        return Self.report(token: token, logits: logits, alternatives: parameters.logprobs ?? 0)
    }

    public mutating func sample(logits: [Float], history output: [Int32], prompt: [Int32] = []) -> SampledToken {
        logits.withUnsafeBufferPointer { sample(logits: $0, history: output, prompt: prompt) }
    }

    /// The first index of the largest value (NaN never wins).
    static func argmax(_ values: [Float]) -> Int32 {
        var best = 0
        for i in 1..<values.count where values[i] > values[best] || values[best].isNaN { best = i }
        return Int32(best)
    }

    /// Temperature, filters and a draw from `work` (penalized logits).
    private mutating func draw() -> Int32 {
        let inverseTemperature = 1 / parameters.temperature
        var maximum = -Float.infinity
        for v in work where v > maximum { maximum = v }
        guard maximum.isFinite else { return Self.argmax(work) }
        // Unnormalized probabilities: exp((logit - max) / T); the most likely token has 1.
        var total: Double = 0
        for i in work.indices {
            let p = exp((work[i] - maximum) * inverseTemperature)
            work[i] = p.isNaN ? 0 : p
            total += Double(work[i])
        }
        // min-p relative to the most likely (1), and top-p's exactness bound: tokens below
        // (1 - p) / vocabulary of the mass together hold less than 1 - p, so the nucleus never
        // reaches them and they need not be sorted.
        let minP = parameters.minP
        if parameters.topK == 0 && parameters.topP == 1 {
            if minP > 0 {
                total = 0
                for i in work.indices {
                    if work[i] < minP { work[i] = 0 }
                    total += Double(work[i])
                }
            }
            return drawInOrder(total: total)
        }
        var threshold = minP
        if parameters.topP < 1 {
            threshold = max(threshold, Float((1 - Double(parameters.topP)) * total / Double(work.count)))
        }
        collectCandidates(above: threshold)
        if parameters.topK > candidates.count && threshold > minP {
            // Top-k then reaches below the top-p bound: its mass needs every token it keeps.
            collectCandidates(above: minP)
        }
        let work = work
        candidates.sort { work[Int($0)] > work[Int($1)] || (work[Int($0)] == work[Int($1)] && $0 < $1) }
        if parameters.topK > 0 && candidates.count > parameters.topK {
            candidates.removeLast(candidates.count - parameters.topK)
        }
        var mass: Double = 0
        for c in candidates { mass += Double(work[Int(c)]) }
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
        let u = generator.nextUnit() * mass
        var cumulative: Double = 0
        for c in candidates {
            cumulative += Double(work[Int(c)])
            if u < cumulative { return c }
        }
        return candidates[candidates.count - 1]
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
