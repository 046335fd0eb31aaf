/// Repetition, presence and frequency penalties as vLLM defines them:
/// - repetition (multiplicative, CTRL/HF style) on every token seen in the prompt or the
///   output: a positive logit is divided by the penalty, a negative one multiplied;
/// - presence: `logit -= presencePenalty` for every token present in the output;
/// - frequency: `logit -= frequencyPenalty * count` for a token occurring `count` times in the output.
public enum Penalties {
    public static func apply(
        to logits: UnsafeMutableBufferPointer<Float>, parameters: SamplingParameters,
        output: [Int32], prompt: [Int32] = []
    ) {
        let vocabulary = logits.count
        if parameters.repetitionPenalty != 1 {
            var seen = Set<Int32>()
            for token in prompt where token >= 0 && Int(token) < vocabulary { seen.insert(token) }
            for token in output where token >= 0 && Int(token) < vocabulary { seen.insert(token) }
            let penalty = parameters.repetitionPenalty
            for token in seen {
                let i = Int(token)
                logits[i] = logits[i] > 0 ? logits[i] / penalty : logits[i] * penalty
            }
        }
        if parameters.presencePenalty != 0 || parameters.frequencyPenalty != 0 {
            var counts: [Int32: Int] = [:]
            for token in output where token >= 0 && Int(token) < vocabulary { counts[token, default: 0] += 1 }
            for (token, count) in counts {
                logits[Int(token)] -= parameters.presencePenalty + parameters.frequencyPenalty * Float(count)
            }
        }
    }

    public static func apply(
        to logits: inout [Float], parameters: SamplingParameters, output: [Int32], prompt: [Int32] = []
    ) {
        logits.withUnsafeMutableBufferPointer { apply(to: $0, parameters: parameters, output: output, prompt: prompt) }
    }
}
