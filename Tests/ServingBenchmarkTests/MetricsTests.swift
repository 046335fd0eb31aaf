import Testing
import ServingBenchmark

@Suite struct LatencySummaryTests {
    @Test func fourSamplesAgainstHandComputedValues() {
        // Sorted 1, 2, 3, 4: mean 2.5; median at rank 1.5 -> 2.5; p90 at rank 2.7 -> 3 + 0.7 = 3.7;
        // p99 at rank 2.97 -> 3.97; variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
        let summary = LatencySummary([4, 1, 3, 2])
        #expect(summary.count == 4)
        #expect(summary.mean == 2.5)
        #expect(summary.median == 2.5)
        #expect(abs(summary.p90 - 3.7) < 1e-12)
        #expect(abs(summary.p99 - 3.97) < 1e-12)
        #expect(abs(summary.standardDeviation - 1.25.squareRoot()) < 1e-12)
    }

    @Test func oddCountMedianIsTheMiddleSample() {
        // 10, 20, 30, 40, 100: median 30; p90 at rank 3.6 -> 40 + 0.6 * 60 = 76; p99 at rank 3.96 -> 97.6.
        let summary = LatencySummary([100, 10, 40, 30, 20])
        #expect(summary.median == 30)
        #expect(summary.mean == 40)
        #expect(abs(summary.p90 - 76) < 1e-12)
        #expect(abs(summary.p99 - 97.6) < 1e-12)
    }

    @Test func oneSampleIsEveryStatistic() {
        let summary = LatencySummary([0.25])
        #expect(summary == LatencySummary([0.25]))
        #expect([summary.mean, summary.median, summary.p90, summary.p99] == [0.25, 0.25, 0.25, 0.25])
        #expect(summary.standardDeviation == 0)
    }

    @Test func noSamplesReportZero() {
        let summary = LatencySummary([])
        #expect(summary.count == 0)
        #expect([summary.mean, summary.median, summary.p90, summary.p99, summary.standardDeviation] == [0, 0, 0, 0, 0])
    }

    @Test func percentileEndsAreTheExtremes() {
        let sorted: [Double] = [1, 5, 9]
        #expect(LatencySummary.percentile(0, ofSorted: sorted) == 1)
        #expect(LatencySummary.percentile(100, ofSorted: sorted) == 9)
        #expect(LatencySummary.percentile(25, ofSorted: sorted) == 3)
    }
}

@Suite struct BenchmarkMetricsTests {
    @Test func metricsOfTwoSuccessesAndOneFailure() {
        let outcomes = [
            // TPOT (2.0 − 0.5) / (4 − 1) = 0.5
            RequestOutcome(promptTokens: 10, outputTokens: 4, timeToFirstToken: 0.5,
                           interTokenLatencies: [0.5, 0.5, 0.5], latency: 2.0),
            // TPOT (1.0 − 0.2) / (5 − 1) = 0.2
            RequestOutcome(promptTokens: 30, outputTokens: 5, timeToFirstToken: 0.2,
                           interTokenLatencies: [0.1, 0.3, 0.2, 0.2], latency: 1.0),
            .failure("HTTP 500: boom", promptTokens: 99, latency: 0.1),
        ]
        let m = BenchmarkMetrics(outcomes: outcomes, duration: 4)
        #expect(m.completed == 2 && m.failed == 1)
        #expect(m.totalInputTokens == 40 && m.totalOutputTokens == 9)
        #expect(m.requestThroughput == 0.5)
        #expect(m.inputThroughput == 10)
        #expect(m.outputThroughput == 2.25)
        #expect(m.totalTokenThroughput == 12.25)
        #expect(abs(m.timeToFirstToken.mean - 0.35) < 1e-12)
        #expect(abs(m.timePerOutputToken.mean - 0.35) < 1e-12)
        #expect(abs(m.timePerOutputToken.p99 - (0.2 + 0.3 * 0.99)) < 1e-12)
        #expect(m.interTokenLatency.count == 7)
        #expect(abs(m.interTokenLatency.median - 0.3) < 1e-12)  // 0.1 0.2 0.2 [0.3] 0.5 0.5 0.5
        #expect(abs(m.interTokenLatency.mean - 2.3 / 7) < 1e-12)
        #expect(m.endToEndLatency.median == 1.5)
    }

    @Test func aRequestWithOneOutputTokenHasNoTimePerOutputToken() {
        let outcomes = [RequestOutcome(promptTokens: 3, outputTokens: 1, timeToFirstToken: 0.4,
                                       interTokenLatencies: [], latency: 0.4)]
        let m = BenchmarkMetrics(outcomes: outcomes, duration: 1)
        #expect(m.timePerOutputToken.count == 0)
        #expect(m.timeToFirstToken.mean == 0.4)
    }
}

@Suite struct ArrivalScheduleTests {
    @Test func infiniteRateSendsEverythingAtOnce() {
        #expect(ArrivalSchedule.offsets(count: 5, requestsPerSecond: .infinity, seed: 1) == [0, 0, 0, 0, 0])
    }

    @Test func poissonGapsHaveTheExponentialMeanAndSpread() {
        // 20 000 gaps at 4 requests/s: an exponential's mean and standard deviation are both
        // 0.25 s; the standard error of the mean is 0.25 / √20 000 ≈ 0.0018, so ±0.01 is over
        // five standard errors. The fraction of gaps above the mean is e⁻¹ ≈ 0.368.
        let count = 20_001
        let offsets = ArrivalSchedule.offsets(count: count, requestsPerSecond: 4, seed: 42)
        #expect(offsets.first == 0)
        let gaps = zip(offsets.dropFirst(), offsets).map { $0 - $1 }
        #expect(gaps.allSatisfy { $0 >= 0 })
        let summary = LatencySummary(gaps)
        #expect(abs(summary.mean - 0.25) < 0.01)
        #expect(abs(summary.standardDeviation - 0.25) < 0.015)
        let above = Double(gaps.filter { $0 > 0.25 }.count) / Double(gaps.count)
        #expect(abs(above - 0.3679) < 0.02)
    }

    @Test func theSameSeedGivesTheSameSchedule() {
        let a = ArrivalSchedule.offsets(count: 50, requestsPerSecond: 10, seed: 7)
        #expect(a == ArrivalSchedule.offsets(count: 50, requestsPerSecond: 10, seed: 7))
        #expect(a != ArrivalSchedule.offsets(count: 50, requestsPerSecond: 10, seed: 8))
    }
}
