/// Mean, median, 90th and 99th percentile and standard deviation of a set of samples, exact:
/// computed from the sorted samples, percentiles interpolated linearly between the two
/// closest ranks (numpy's default, which `vllm bench serve` reports).
public struct LatencySummary: Sendable, Equatable {
    public var mean: Double
    public var median: Double
    public var p90: Double
    public var p99: Double
    /// Population standard deviation (numpy's `std`, ddof 0).
    public var standardDeviation: Double
    public var count: Int

    /// All zero for no samples, as vLLM reports a metric nothing measured.
    public init(_ samples: [Double]) {
        count = samples.count
        guard !samples.isEmpty else {
            mean = 0; median = 0; p90 = 0; p99 = 0; standardDeviation = 0
            return
        }
        let sorted = samples.sorted()
        let mean = sorted.reduce(0, +) / Double(sorted.count)
        self.mean = mean
        median = Self.percentile(50, ofSorted: sorted)
        p90 = Self.percentile(90, ofSorted: sorted)
        p99 = Self.percentile(99, ofSorted: sorted)
        standardDeviation = (sorted.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(sorted.count)).squareRoot()
    }

    /// The `p`th percentile (0...100) of ascending `sorted` samples: rank p/100·(n−1), linear
    /// interpolation between the samples either side of it.
    public static func percentile(_ p: Double, ofSorted sorted: [Double]) -> Double {
        precondition(!sorted.isEmpty && (0...100).contains(p))
        let rank = p / 100 * Double(sorted.count - 1)
        let below = Int(rank.rounded(.down))
        let above = min(below + 1, sorted.count - 1)
        return sorted[below] + (sorted[above] - sorted[below]) * (rank - Double(below))
    }
}
