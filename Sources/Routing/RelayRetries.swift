import Hummingbird

extension Relay {
    /// What one turn of the retry loop did.
    enum RetryStep {
        /// A try was made on the chosen worker (or pair).
        case tried(Attempt)
        /// The chosen worker could not be claimed (its breaker's trial slot was taken, the pair
        /// shares no transfer protocol): choose again, without counting a try.
        case skipped
        /// No worker (or pair) is left to try.
        case exhausted
    }

    /// The retry rule both mixed and prefill–decode requests follow: up to 1 + maxRetries tries,
    /// each after a backoff with jitter, while tries fail before the first token. `turn(number)`
    /// chooses and claims the worker(s) of try `number` (1 for the first), leaving out those
    /// that failed before, and makes the try.
    func withRetries(noWorker role: String, context: RelayContext,
                     _ turn: (_ number: Int) async throws -> RetryStep) async throws -> Response {
        var attempts = 0
        var lastError = ""
        while attempts <= settings.retry.maxRetries {
            switch try await turn(attempts + 1) {
            case .tried(.done(let response)):
                return response
            case .tried(.failed(let why, _)):
                attempts += 1
                lastError = why
                context.logger.warning("\(context.requestID): try \(attempts) failed before the first token: \(why)")
                if attempts <= settings.retry.maxRetries {
                    metrics.recordRetry()
                    try await Task.sleep(for: settings.retry.delay(attempt: attempts - 1))
                }
            case .skipped:
                continue
            case .exhausted:
                if attempts == 0 { throw RouterError.noWorker(role) }
                throw RouterError.upstreamFailed(attempts: attempts, last: lastError)
            }
        }
        throw RouterError.upstreamFailed(attempts: attempts, last: lastError)
    }
}
