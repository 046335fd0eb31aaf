import Engine

/// Log-probabilities in the two APIs' shapes, built token by token.
extension CompletionLogprobs {
    /// Adds one token; `offset` is where its text starts in the choice's text, and moves on.
    mutating func append(_ token: Int32, logprob: Float?, alternatives: [TokenLogprob]?, context: ModelContext,
                         offset: inout Int) {
        let text = context.text(ofToken: token)
        tokens.append(text)
        tokenLogprobs.append(logprob)
        if let alternatives, let logprob {
            var top: [String: Float] = [:]
            for alternative in alternatives { top[context.text(ofToken: alternative.token)] = alternative.logprob }
            // The chosen token is always among them (as vLLM reports it).
            top[text] = logprob
            topLogprobs.append(top)
        } else {
            topLogprobs.append(nil)
        }
        textOffset.append(offset)
        offset += text.count
    }

    mutating func append(_ sampled: [SampledToken], context: ModelContext, offset: inout Int) {
        for token in sampled {
            append(token.token, logprob: token.logprob ?? 0, alternatives: token.topLogprobs, context: context, offset: &offset)
        }
    }

    /// The prompt's tokens (`echo`): the first has no log-probability.
    mutating func append(prompt: [Int32], logprobs: [PromptTokenLogprob?], context: ModelContext, offset: inout Int) {
        for (position, token) in prompt.enumerated() {
            let entry = position < logprobs.count ? logprobs[position] : nil
            append(token, logprob: entry?.logprob, alternatives: entry?.topLogprobs, context: context, offset: &offset)
        }
    }
}

extension ChatLogprobs {
    init(_ sampled: [SampledToken], context: ModelContext) {
        content = sampled.map { token in
            let text = context.text(ofToken: token.token)
            return Entry(token: text, logprob: token.logprob ?? 0, bytes: Array(text.utf8),
                         topLogprobs: token.topLogprobs.map { alternative in
                             let text = context.text(ofToken: alternative.token)
                             return Alternative(token: text, logprob: alternative.logprob, bytes: Array(text.utf8))
                         })
        }
    }
}
