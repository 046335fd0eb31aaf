import ArgumentParser
import Engine

extension PrefillBatchingPolicy: ExpressibleByArgument {}

/// `--prefill-batching-policy fcfs|gtsf` and its ageing bound: the order in which waiting
/// requests are admitted (on a prefill instance, the order of the prefills; on any role).
struct PrefillBatchingOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Admission order of waiting requests: fcfs (arrival order) or gtsf (group-time-short-first: prompts grouped by length in power-of-two ranges, the shortest group first, arrival order within a group).",
        valueName: "policy"))
    var prefillBatchingPolicy = PrefillBatchingPolicy.fcfs

    @Option(help: ArgumentHelp(
        "With gtsf, seconds after which a waiting request goes ahead of every length group (bounds how long a long prompt waits).",
        valueName: "seconds"))
    var prefillBatchingMaxWait: Double = 10

    func validate() throws {
        guard prefillBatchingMaxWait >= 0 && prefillBatchingMaxWait <= 1e9 else {
            throw ValidationError("--prefill-batching-max-wait must be 0 or more seconds (at most 1e9)")
        }
    }

    func apply(to configuration: inout ServingConfiguration) {
        configuration.prefillBatchingPolicy = prefillBatchingPolicy
        configuration.prefillBatchingMaxWait = prefillBatchingMaxWait
    }
}
