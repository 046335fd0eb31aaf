import Foundation
import Testing
import TestSupport
import Engine
import GGUF

@Suite struct SamplingTests {
    /// Random logits over a small vocabulary, reproducible.
    static func logits(_ count: Int = 50, seed: UInt64 = 1) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in Float.random(in: -4...4, using: &rng) }
    }

    static func softmax(_ logits: [Float]) -> [Double] {
        let m = logits.max()!
        let e = logits.map { exp(Double($0 - m)) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    @Test func greedyIsArgmax() throws {
        for seed in 1...20 as ClosedRange<UInt64> {
            let logits = Self.logits(seed: seed)
            var sampler = try Sampler(parameters: .greedy)
            let expected = logits.indices.max { logits[$0] < logits[$1] }!
            #expect(sampler.sample(logits: logits, history: []).token == Int32(expected))
            var topOne = try Sampler(parameters: SamplingParameters(temperature: 1.5, topK: 1))
            #expect(topOne.sample(logits: logits, history: []).token == Int32(expected))
        }
        var ties = try Sampler(parameters: .greedy)
        #expect(ties.sample(logits: [1, 3, 3, 2], history: []).token == 1)
    }

    @Test func fixedSeedIsReproducible() throws {
        let logits = Self.logits()
        let parameters = SamplingParameters(temperature: 0.9, topP: 0.95, seed: 42)
        var a = try Sampler(parameters: parameters), b = try Sampler(parameters: parameters)
        let first = (0..<200).map { _ in a.sample(logits: logits, history: []).token }
        let second = (0..<200).map { _ in b.sample(logits: logits, history: []).token }
        #expect(first == second)
        var c = try Sampler(parameters: SamplingParameters(temperature: 0.9, topP: 0.95, seed: 43))
        let third = (0..<200).map { _ in c.sample(logits: logits, history: []).token }
        #expect(first != third)
        #expect(Set(first).count > 3)
    }

    @Test func xoshiroKnownValues() throws {
        // Reference: the first outputs of xoshiro256** seeded by SplitMix64(0), computed
        // with the authors' C code's recurrence in Python (see the test helper below).
        var generator = Xoshiro256StarStar(seed: 0)
        let ours = (0..<3).map { _ in generator.next() }
        for (value, expected) in try paired(ours, Self.referenceXoshiro(seed: 0, count: 3), reference: "the Python xoshiro256**") {
            #expect(value == expected)
        }
    }

    /// Independent arbitrary-precision model of the generator (no shared code).
    static func referenceXoshiro(seed: UInt64, count: Int) -> [UInt64] {
        let script = """
            import sys
            M = (1 << 64) - 1
            x = int(sys.argv[1])
            def splitmix():
                global x
                x = (x + 0x9E3779B97F4A7C15) & M
                z = x
                z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
                z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
                return z ^ (z >> 31)
            s = [splitmix() for _ in range(4)]
            rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M
            for _ in range(int(sys.argv[2])):
                print(rotl((s[1] * 5) & M, 7) * 9 & M)
                t = (s[1] << 17) & M
                s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45)
            """
        let output = try? runProcess("/usr/bin/env", ["python3", "-c", script, String(seed), String(count)])
        return (output?.stdout ?? "").split(separator: "\n").compactMap { UInt64($0) }
    }

    @Test func topKNeverLeavesTheKBest() throws {
        let logits = Self.logits(100)
        let best = Set(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(5).map { Int32($0) })
        var sampler = try Sampler(parameters: SamplingParameters(temperature: 2, topK: 5, seed: 1))
        var seen = Set<Int32>()
        for _ in 0..<2000 { seen.insert(sampler.sample(logits: logits, history: []).token) }
        #expect(seen == best)  // never outside, and with a high temperature every one is drawn
    }

    @Test func topPKeepsTheNucleus() throws {
        let logits = Self.logits(100, seed: 5)
        let probabilities = Self.softmax(logits)
        let order = logits.indices.sorted { probabilities[$0] > probabilities[$1] }
        var cumulative = 0.0
        var nucleus = Set<Int32>()
        for i in order {
            nucleus.insert(Int32(i))
            cumulative += probabilities[i]
            if cumulative >= 0.8 { break }
        }
        var sampler = try Sampler(parameters: SamplingParameters(temperature: 1, topP: 0.8, seed: 2))
        var counts: [Int32: Int] = [:]
        let draws = 20000
        for _ in 0..<draws { counts[sampler.sample(logits: logits, history: []).token, default: 0] += 1 }
        #expect(Set(counts.keys) == nucleus)
        // Frequencies follow the renormalized probabilities (5 standard deviations).
        for token in nucleus {
            let p = probabilities[Int(token)] / cumulative
            let observed = Double(counts[token] ?? 0) / Double(draws)
            #expect(abs(observed - p) <= 5 * (p * (1 - p) / Double(draws)).squareRoot() + 1e-3)
        }
    }

    @Test func topKThenTopP() throws {
        let logits: [Float] = [5, 4.9, 4.8, 0, 0, 0, -1, -2]
        var sampler = try Sampler(parameters: SamplingParameters(temperature: 1, topK: 2, topP: 0.3, seed: 3))
        let drawn = Set((0..<500).map { _ in sampler.sample(logits: logits, history: []).token })
        #expect(drawn == [0])  // within the top 2, token 0 alone holds ≥ 30 % of their mass
    }

    @Test func minPDropsTheUnlikely() throws {
        let logits = Self.logits(60, seed: 9)
        let probabilities = Self.softmax(logits)
        let top = probabilities.max()!
        let allowed = Set(probabilities.indices.filter { probabilities[$0] >= 0.2 * top }.map { Int32($0) })
        var sampler = try Sampler(parameters: SamplingParameters(temperature: 1, minP: 0.2, seed: 4))
        let drawn = Set((0..<5000).map { _ in sampler.sample(logits: logits, history: []).token })
        #expect(drawn == allowed)
    }

    @Test func temperatureSharpens() throws {
        let logits: [Float] = [1, 0.5, 0, -0.5]
        var cold = try Sampler(parameters: SamplingParameters(temperature: 0.1, seed: 5))
        var hot = try Sampler(parameters: SamplingParameters(temperature: 10, seed: 5))
        let coldZeros = (0..<1000).filter { _ in cold.sample(logits: logits, history: []).token == 0 }.count
        let hotZeros = (0..<1000).filter { _ in hot.sample(logits: logits, history: []).token == 0 }.count
        #expect(coldZeros > 975)  // p ≈ 0.993
        #expect(hotZeros > 200 && hotZeros < 320)  // near 1/4 (p ≈ 0.27)
    }

    @Test func penaltiesAsDefined() {
        var logits: [Float] = [2, -2, 1, 0.5, 3]
        let output: [Int32] = [0, 0, 1, 3, 3, 3]
        let prompt: [Int32] = [2]
        Penalties.apply(
            to: &logits,
            parameters: SamplingParameters(repetitionPenalty: 2, presencePenalty: 0.5, frequencyPenalty: 0.25),
            output: output, prompt: prompt)
        // token 0: 2/2 - 0.5 - 2·0.25; token 1: -2·2 - 0.5 - 0.25; token 2 (prompt only): 1/2;
        // token 3: 0.5/2 - 0.5 - 3·0.25; token 4: untouched.
        #expect(logits == [0, -4.75, 0.5, -1, 3])
        var unchanged: [Float] = [1, 2]
        Penalties.apply(to: &unchanged, parameters: SamplingParameters(), output: [0, 1, 1], prompt: [1])
        #expect(unchanged == [1, 2])
    }

    @Test func penaltiesSteerSampling() throws {
        var sampler = try Sampler(parameters: SamplingParameters(temperature: 0, frequencyPenalty: 2))
        // Token 0 leads by 1; after one occurrence its penalty of 2 makes token 1 the argmax.
        #expect(sampler.sample(logits: [3, 2, 0], history: []).token == 0)
        #expect(sampler.sample(logits: [3, 2, 0], history: [0]).token == 1)
    }

    @Test func logprobsAreTheModelDistribution() throws {
        let logits = Self.logits(40, seed: 12)
        let probabilities = Self.softmax(logits)
        var sampler = try Sampler(parameters: SamplingParameters(temperature: 0.7, seed: 6, logprobs: 5))
        for _ in 0..<50 {
            let result = sampler.sample(logits: logits, history: [])
            #expect(abs(Double(try #require(result.logprob)) - log(probabilities[Int(result.token)])) < 1e-4)
            #expect(result.topLogprobs.count == 5)
            let expectedTop = logits.indices.sorted { logits[$0] > logits[$1] }.prefix(5).map { Int32($0) }
            #expect(result.topLogprobs.map(\.token) == expectedTop)
            for alternative in result.topLogprobs {
                #expect(abs(Double(alternative.logprob) - log(probabilities[Int(alternative.token)])) < 1e-4)
            }
        }
        // Over the whole vocabulary the probabilities sum to one.
        var all = try Sampler(parameters: SamplingParameters(temperature: 0, logprobs: 20))
        let wide = Self.logits(20, seed: 13)
        let total = all.sample(logits: wide, history: []).topLogprobs.map { exp(Double($0.logprob)) }.reduce(0, +)
        #expect(abs(total - 1) < 1e-5)
        var none = try Sampler(parameters: .greedy)
        #expect(none.sample(logits: wide, history: []).topLogprobs.isEmpty)
        #expect(none.sample(logits: wide, history: []).logprob == nil)
        var own = try Sampler(parameters: SamplingParameters(temperature: 0, logprobs: 0))
        let result = own.sample(logits: wide, history: [])
        #expect(result.topLogprobs.isEmpty)
        #expect(abs(Double(try #require(result.logprob)) - log(Self.softmax(wide)[Int(result.token)])) < 1e-5)
    }

    @Test func invalidParametersAreClearErrors() {
        func message(_ parameters: SamplingParameters) -> String? {
            do { _ = try Sampler(parameters: parameters); return nil } catch { return "\(error)" }
        }
        #expect(message(SamplingParameters(temperature: -1)) == "invalid sampling parameter temperature = -1.0: must be a finite number >= 0")
        #expect(message(SamplingParameters(topK: -3)) == "invalid sampling parameter top_k = -3: must be >= 0 (0 disables it)")
        #expect(message(SamplingParameters(topP: 0)) == "invalid sampling parameter top_p = 0.0: must be in (0, 1]")
        #expect(message(SamplingParameters(minP: 1.5)) == "invalid sampling parameter min_p = 1.5: must be in [0, 1]")
        #expect(message(SamplingParameters(repetitionPenalty: 0)) == "invalid sampling parameter repetition_penalty = 0.0: must be a finite number > 0")
        #expect(message(SamplingParameters(presencePenalty: 3)) == "invalid sampling parameter presence_penalty = 3.0: must be in [-2, 2]")
        #expect(message(SamplingParameters(logprobs: 21)) == "invalid sampling parameter logprobs = 21: must be in 0...20")
        #expect(message(SamplingParameters(temperature: 0.5, topK: 3, topP: 0.9, minP: 0.1, seed: 1, logprobs: 2)) == nil)
    }

    @Test func parametersAreCodable() throws {
        let parameters = SamplingParameters(temperature: 0.5, topK: 3, seed: 9, logprobs: 2)
        let decoded = try JSONDecoder().decode(SamplingParameters.self, from: JSONEncoder().encode(parameters))
        #expect(decoded == parameters)
    }

    @Test func realVocabularySize() throws {
        let logits = Self.logits(49152, seed: 21)
        var sampler = try Sampler(parameters: SamplingParameters(temperature: 0.8, topP: 0.9, seed: 7, logprobs: 3))
        let result = sampler.sample(logits: logits, history: [1, 2, 3])
        #expect((0..<49152).contains(Int(result.token)))
        #expect(result.topLogprobs.count == 3)
    }
}
