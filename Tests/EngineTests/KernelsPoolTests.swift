import CKernels
import Testing
import TestSupport

@Suite struct KernelsPoolTests {
    /// Every thread index runs exactly once per tk_pool_run, with the right thread count,
    /// over many back-to-back jobs (workers spinning) and after the workers fell asleep.
    @Test(arguments: [1, 2, 3])
    func runCallsEveryThreadOnce(threads: Int32) throws {
        let pool = try #require(tk_pool_create(threads))
        defer { tk_pool_destroy(pool) }
        #expect(tk_pool_threads(pool) == threads)
        // counts[0]: the expected nth; counts[1]: calls with another nth (or ith out of range);
        // counts[2 + ith]: calls per thread (only thread ith writes it; tk_pool_run returns
        // after every thread finished, so the reads below see all writes).
        let counts = UnsafeMutablePointer<Int64>.allocate(capacity: Int(threads) + 2)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: Int(threads) + 2)
        counts[0] = Int64(threads)
        let fn: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { ctx, ith, nth in
            let c = ctx!.assumingMemoryBound(to: Int64.self)
            if Int64(nth) == c[0] && ith >= 0 && ith < nth { c[2 + Int(ith)] += 1 } else { c[1] += 1 }
        }
        for _ in 0..<1_000 { tk_pool_run(pool, fn, counts) }
        #expect(waitUntil { tk_pool_sleeping_workers(pool) == threads - 1 }, "workers still spinning") // past their spin: asleep
        for _ in 0..<10 { tk_pool_run(pool, fn, counts) }
        for ith in 0..<Int(threads) { #expect(counts[2 + ith] == 1_010, "thread \(ith)") }
        #expect(counts[1] == 0)
    }

    @Test func threadCountBelowOneMeansOne() throws {
        let pool = try #require(tk_pool_create(0))
        defer { tk_pool_destroy(pool) }
        #expect(tk_pool_threads(pool) == 1)
        #expect(tk_pool_threads(nil) == 1)
    }
}
