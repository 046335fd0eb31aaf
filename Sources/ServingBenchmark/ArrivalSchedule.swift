import Engine
import Foundation
import GGUF

/// When each request of a benchmark is sent, in seconds after the start: a Poisson process of
/// `requestsPerSecond` (exponential gaps, drawn from a generator seeded with `seed`, so the same
/// seed gives the same schedule), or all at once for an infinite rate. The first request goes
/// at 0, as in `vllm bench serve`.
public enum ArrivalSchedule {
    public static func offsets(count: Int, requestsPerSecond: Double, seed: UInt64) -> [Double] {
        precondition(count >= 0 && requestsPerSecond > 0)
        guard requestsPerSecond.isFinite else { return Array(repeating: 0, count: count) }
        var generator = SplitMix64(seed: seed)
        var time = 0.0
        var offsets: [Double] = []
        offsets.reserveCapacity(count)
        for _ in 0..<count {
            offsets.append(time)
            time += exponentialGap(mean: 1 / requestsPerSecond, using: &generator)
        }
        return offsets
    }

    /// Inverse-transform sampling: −mean·ln(1 − U) for U uniform in [0, 1).
    static func exponentialGap(mean: Double, using generator: inout SplitMix64) -> Double {
        let uniform = Double(generator.next() >> 11) * 0x1p-53
        return -mean * log1p(-uniform)
    }
}
