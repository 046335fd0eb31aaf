/// Sends every prompt to the server on the arrival schedule (Poisson at `requestRate`
/// requests per second, all at once for an infinite rate), with at most `maxConcurrency`
/// requests in flight (a request due while that many run waits for one to finish), and
/// returns each prompt's outcome in prompt order and the run's duration in seconds.
/// `progress` is called with the number of finished requests after each one finishes.
public func runServingBenchmark(
    client: OpenAIStreamingClient, prompts: [BenchmarkPrompt], endpoint: CompletionEndpoint, model: String,
    ignoreEOS: Bool, maxConcurrency: Int?, requestRate: Double, seed: UInt64,
    progress: (Int) -> Void = { _ in }
) async -> (outcomes: [RequestOutcome], duration: Double) {
    let offsets = ArrivalSchedule.offsets(count: prompts.count, requestsPerSecond: requestRate, seed: seed)
    var outcomes = [RequestOutcome?](repeating: nil, count: prompts.count)
    let start = ContinuousClock.now
    await withTaskGroup(of: (Int, RequestOutcome).self) { group in
        var running = 0, finished = 0
        func record(_ result: (Int, RequestOutcome)) {
            outcomes[result.0] = result.1
            running -= 1
            finished += 1
            progress(finished)
        }
        for (index, prompt) in prompts.enumerated() {
            if offsets[index] > 0 {
                try? await Task.sleep(until: start.advanced(by: .seconds(offsets[index])), clock: .continuous)
            }
            if let maxConcurrency, running >= maxConcurrency, let result = await group.next() { record(result) }
            group.addTask { (index, await client.send(prompt, endpoint: endpoint, model: model, ignoreEOS: ignoreEOS)) }
            running += 1
        }
        while let result = await group.next() { record(result) }
    }
    let elapsed = ContinuousClock.now - start
    let duration = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    return (outcomes.map { $0! }, duration)
}
