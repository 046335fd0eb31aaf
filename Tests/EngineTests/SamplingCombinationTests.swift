import Engine
import Foundation
import GGUF
import Testing
import TestSupport

/// Penalties and filters combined, where bugs hide from one-at-a-time tests: the tokens the
/// sampler keeps and their probabilities (`Sampler.distribution`, what `sample` draws from)
/// against a reference written here from the definitions, in Double.
@Suite struct SamplingCombinationTests {
    struct Combination: Sendable, CustomTestStringConvertible {
        var name: String
        var parameters: SamplingParameters
        var testDescription: String { name }
    }

    static let combinations: [Combination] = [
        .init(name: "min-p 0.05 + top-p 0.9", parameters: SamplingParameters(topP: 0.9, minP: 0.05)),
        .init(name: "min-p 0.3 + top-p 0.5", parameters: SamplingParameters(topP: 0.5, minP: 0.3)),
        .init(name: "min-p 0.2 + top-p 0.99, T 1.3", parameters: SamplingParameters(temperature: 1.3, topP: 0.99, minP: 0.2)),
        .init(name: "top-k 3 + min-p 0.3", parameters: SamplingParameters(topK: 3, minP: 0.3)),
        .init(name: "top-k 40 + min-p 0.05, T 0.7", parameters: SamplingParameters(temperature: 0.7, topK: 40, minP: 0.05)),
        .init(name: "top-k 500 + min-p 0.01", parameters: SamplingParameters(topK: 500, minP: 0.01)),
        .init(name: "top-k 40 + top-p 0.8", parameters: SamplingParameters(topK: 40, topP: 0.8)),
        .init(name: "top-k 500 + top-p 0.9 (top-k below the top-p bound)", parameters: SamplingParameters(topK: 500, topP: 0.9)),
        .init(name: "top-k 20 + top-p 0.7 + min-p 0.1", parameters: SamplingParameters(topK: 20, topP: 0.7, minP: 0.1)),
        .init(name: "repetition 1.3 + presence 0.5", parameters: SamplingParameters(repetitionPenalty: 1.3, presencePenalty: 0.5)),
        .init(name: "repetition 0.8 + frequency 0.4", parameters: SamplingParameters(repetitionPenalty: 0.8, frequencyPenalty: 0.4)),
        .init(name: "presence -0.5 + frequency 0.7", parameters: SamplingParameters(presencePenalty: -0.5, frequencyPenalty: 0.7)),
        .init(name: "all three penalties", parameters: SamplingParameters(repetitionPenalty: 1.5, presencePenalty: 1, frequencyPenalty: 0.5)),
        .init(name: "repetition 2 + min-p 0.2", parameters: SamplingParameters(minP: 0.2, repetitionPenalty: 2)),
        .init(name: "presence 1.5 + top-k 5", parameters: SamplingParameters(topK: 5, presencePenalty: 1.5)),
        .init(name: "frequency 1 + top-p 0.6", parameters: SamplingParameters(topP: 0.6, frequencyPenalty: 1)),
        .init(name: "all penalties + all filters, T 0.8", parameters: SamplingParameters(
            temperature: 0.8, topK: 30, topP: 0.85, minP: 0.05, repetitionPenalty: 1.2, presencePenalty: 0.3, frequencyPenalty: 0.2)),
    ]

    /// The definitions (vLLM's): repetition penalty on every prompt and output token (a positive
    /// logit divided by it, a negative one multiplied), then presence and frequency on output
    /// tokens (minus presence once, minus frequency per occurrence); temperature; min-p drops
    /// tokens below min-p times the most likely one; top-k keeps the k most likely; top-p keeps
    /// the shortest most-likely-first run whose probability reaches top-p of what is left;
    /// what remains is renormalized.
    static func reference(logits: [Float], parameters: SamplingParameters, output: [Int32], prompt: [Int32]) -> [Int32: Double] {
        var values = logits.map(Double.init)
        let repetition = Double(parameters.repetitionPenalty)
        for token in Set(prompt + output) {
            values[Int(token)] = values[Int(token)] > 0 ? values[Int(token)] / repetition : values[Int(token)] * repetition
        }
        for token in Set(output) {
            let count = Double(output.filter { $0 == token }.count)
            values[Int(token)] -= Double(parameters.presencePenalty) + Double(parameters.frequencyPenalty) * count
        }
        let largest = values.max()!
        let weights = values.map { exp(($0 - largest) / Double(parameters.temperature)) }
        let total = weights.reduce(0, +)
        var kept = weights.indices.map { (token: Int32($0), probability: weights[$0] / total) }
        let best = kept.map(\.probability).max()!
        kept.removeAll { $0.probability < Double(parameters.minP) * best }
        kept.sort { $0.probability > $1.probability || ($0.probability == $1.probability && $0.token < $1.token) }
        if parameters.topK > 0 { kept = Array(kept.prefix(parameters.topK)) }
        if parameters.topP < 1 {
            let target = Double(parameters.topP) * kept.map(\.probability).reduce(0, +)
            var cumulative = 0.0, count = 0
            while count < kept.count && cumulative < target {
                cumulative += kept[count].probability
                count += 1
            }
            kept = Array(kept.prefix(count))
        }
        let mass = kept.map(\.probability).reduce(0, +)
        return Dictionary(uniqueKeysWithValues: kept.map { ($0.token, $0.probability / mass) })
    }

    /// Random logits (no ties) over `vocabulary` tokens; the output repeats the three most
    /// likely tokens and a few others, the prompt holds another likely one, so every penalty
    /// changes the ranking.
    static func scenario(vocabulary: Int, seed: UInt64) -> (logits: [Float], output: [Int32], prompt: [Int32]) {
        var rng = SplitMix64(seed: seed)
        let logits = (0..<vocabulary).map { _ in Float.random(in: -4...4, using: &rng) }
        let ranked = logits.indices.sorted { logits[$0] > logits[$1] }.map { Int32($0) }
        let output = [ranked[0], ranked[0], ranked[0], ranked[1], ranked[2], ranked[2], ranked[7], ranked[vocabulary / 2]]
        let prompt = [ranked[3], ranked[1], ranked[vocabulary - 1]]
        return (logits, output, prompt)
    }

    @Test(arguments: combinations, [64, 3000])
    func keptTokensAndProbabilitiesMatchTheReference(combination: Combination, vocabulary: Int) throws {
        for seed: UInt64 in 1...4 {
            let (logits, output, prompt) = Self.scenario(vocabulary: vocabulary, seed: seed * 31 + UInt64(vocabulary))
            var sampler = try Sampler(parameters: combination.parameters)
            let actual = sampler.distribution(logits: logits, history: output, prompt: prompt)
            let expected = Self.reference(logits: logits, parameters: combination.parameters, output: output, prompt: prompt)
            let context = "\(combination.name), vocabulary \(vocabulary), seed \(seed)"
            #expect(actual.count == expected.count, "\(context): \(actual.count) tokens kept, the reference keeps \(expected.count)")
            let byToken = actual.sorted { $0.token < $1.token }
            let referenceByToken = expected.sorted { $0.key < $1.key }.map { (token: $0.key, probability: $0.value) }
            let differing = difference(byToken, referenceByToken) {
                $0.token == $1.token && abs($0.probability - $1.probability) <= 1e-5 * $1.probability + 1e-12
            }
            #expect(differing == nil, "\(context): (token, probability) \(differing ?? "")")
            // Most likely first, and a distribution.
            #expect(zip(actual, actual.dropFirst()).allSatisfy { $0.probability >= $1.probability }, "\(context)")
            #expect(abs(actual.map(\.probability).reduce(0, +) - 1) < 1e-9, "\(context)")
        }
    }

    /// `sample` draws only from `distribution`'s tokens, and from each about as often as its
    /// probability says (5 standard deviations).
    @Test(arguments: [combinations[1], combinations[8], combinations[16]])
    func samplesComeFromTheDistribution(combination: Combination) throws {
        let (logits, output, prompt) = Self.scenario(vocabulary: 3000, seed: 99)
        var parameters = combination.parameters
        parameters.seed = 5
        var sampler = try Sampler(parameters: parameters)
        let distribution = sampler.distribution(logits: logits, history: output, prompt: prompt)
        let draws = 20_000
        var counts: [Int32: Int] = [:]
        for _ in 0..<draws { counts[sampler.sample(logits: logits, history: output, prompt: prompt).token, default: 0] += 1 }
        let support = Set(distribution.map(\.token))
        #expect(Set(counts.keys).isSubset(of: support), "\(combination.name): drew \(Set(counts.keys).subtracting(support).sorted().prefix(10)) outside")
        for (token, p) in distribution {
            let observed = Double(counts[token] ?? 0) / Double(draws)
            #expect(abs(observed - p) <= 5 * (p * (1 - p) / Double(draws)).squareRoot() + 1e-3, "\(combination.name): token \(token)")
        }
    }
}
