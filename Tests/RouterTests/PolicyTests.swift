import PDProtocol
import Routing
import Testing

/// Each policy's choice on hand-made worker snapshots.
@Suite struct PolicyTests {
    static func worker(_ port: Int, role: SplitwiseRole = .mixed, inFlight: Int = 0, load: InstanceLoad? = nil) -> WorkerSnapshot {
        WorkerSnapshot(registration: WorkerRegistration(role: role, endpoint: PeerEndpoint(host: "127.0.0.1", port: port), model: "m"),
                       inFlight: inFlight, load: load)
    }

    static func load(running: Int = 0, waiting: Int = 0, free: Int) -> InstanceLoad {
        InstanceLoad(runningRequests: running, waitingRequests: waiting, kvBlocksTotal: 100, kvBlocksUsed: 100 - free,
                     kvBlocksFree: free, blockSize: 16)
    }

    let three = [worker(8001), worker(8002), worker(8003)]

    @Test func roundRobinTakesEachInTurn() {
        let policy = PolicyName.roundRobin.make(settings: .init())
        let ports = (0..<7).map { _ in policy.choose(among: three, for: .init()).registration.endpoint.port }
        #expect(ports == [8001, 8002, 8003, 8001, 8002, 8003, 8001])
    }

    @Test func randomReachesEveryWorkerAndNoOther() {
        let policy = PolicyName.random.make(settings: .init())
        let chosen = Set((0..<300).map { _ in policy.choose(among: three, for: .init()).url })
        #expect(chosen == Set(three.map(\.url)))
    }

    @Test func powerOfTwoNeverPicksTheBusiestOfThree() {
        let policy = PolicyName.powerOfTwo.make(settings: .init())
        let workers = [Self.worker(8001, inFlight: 5), Self.worker(8002, inFlight: 9), Self.worker(8003, inFlight: 1)]
        let chosen = (0..<200).map { _ in policy.choose(among: workers, for: .init()).registration.endpoint.port }
        #expect(!chosen.contains(8002))
        #expect(Set(chosen) == [8001, 8003])
        #expect(policy.choose(among: [workers[1]], for: .init()).registration.endpoint.port == 8002)
    }

    @Test func leastRequestsTakesTheFewestInFlight() {
        let policy = PolicyName.leastRequests.make(settings: .init())
        let workers = [Self.worker(8001, inFlight: 3), Self.worker(8002, inFlight: 1), Self.worker(8003, inFlight: 2)]
        #expect(policy.choose(among: workers, for: .init()).registration.endpoint.port == 8002)
    }

    @Test func freeKVFirstTakesTheMostFreeBlocksThenFewerInFlight() {
        let policy = PolicyName.freeKVFirst.make(settings: .init())
        let workers = [Self.worker(8001, load: Self.load(free: 10)), Self.worker(8002, inFlight: 4, load: Self.load(free: 80)),
                       Self.worker(8003, inFlight: 1, load: Self.load(free: 80)), Self.worker(8004)]
        #expect(policy.choose(among: workers, for: .init()).registration.endpoint.port == 8003)
    }

    @Test func blbTakesTheFewestQueued() {
        let policy = AscendPrefillPolicy.blb.policyName.make(settings: .init())
        let workers = [Self.worker(8001, load: Self.load(running: 0, waiting: 4, free: 90)),
                       Self.worker(8002, inFlight: 9, load: Self.load(running: 9, waiting: 1, free: 10)),
                       Self.worker(8003, load: Self.load(running: 0, waiting: 2, free: 90))]
        #expect(policy.choose(among: workers, for: .init()).registration.endpoint.port == 8002)
        #expect(AscendPrefillPolicy.freeKVFirst.policyName == .freeKVFirst)
        #expect(AscendPrefillPolicy.roundRobin.policyName == .roundRobin)
    }

    @Test func cacheAwareSendsASharedPrefixToTheSameWorker() {
        let policy = PolicyName.cacheAware.make(settings: .init())
        let system = String(repeating: "You are a helpful assistant who answers in French. ", count: 8)
        let first = policy.choose(among: three, for: .init(promptText: system + "What is 2+2?"))
        for question in ["Who wrote Hamlet?", "Name a colour.", "What is the capital of Italy?"] {
            #expect(policy.choose(among: three, for: .init(promptText: system + question)).url == first.url)
        }
        // A prompt that shares nothing goes to the least busy worker.
        let busy = three.map { $0.url == first.url ? WorkerSnapshot(registration: $0.registration, inFlight: 3) : $0 }
        let other = policy.choose(among: busy, for: .init(promptText: String(repeating: "Completely unrelated text. ", count: 20)))
        #expect(other.url != first.url)
    }

    @Test func cacheAwareFallsBackToTheLeastBusyUnderImbalance() {
        var settings = PolicySettings()
        settings.balanceAbsThreshold = 4
        settings.balanceRelThreshold = 1.5
        let policy = PolicyName.cacheAware.make(settings: settings)
        let prompt = String(repeating: "A long shared prefix. ", count: 20)
        let first = policy.choose(among: three, for: .init(promptText: prompt))
        let imbalanced = three.map { WorkerSnapshot(registration: $0.registration, inFlight: $0.url == first.url ? 20 : 1) }
        #expect(policy.choose(among: imbalanced, for: .init(promptText: prompt)).url != first.url)
    }

    @Test func prefixHashesChainOverBlocks() {
        let a = CacheAwarePolicy.prefixHashes(String(repeating: "x", count: 130), blockChars: 64)
        let b = CacheAwarePolicy.prefixHashes(String(repeating: "x", count: 128) + "yy", blockChars: 64)
        #expect(a.count == 3 && b.count == 3)
        #expect(Array(a.prefix(2)) == Array(b.prefix(2)))
        #expect(a[2] != b[2])
        #expect(CacheAwarePolicy.prefixHashes("", blockChars: 64).isEmpty)
    }

    @Test func bucketSendsSimilarLengthsToTheSameWorkers() {
        let policy = BucketPolicy(boundaries: [100, 1000])
        let workers = [Self.worker(8001), Self.worker(8002), Self.worker(8003)]
        func port(_ length: Int) -> Int {
            policy.choose(among: workers, for: .init(promptText: String(repeating: "a", count: length))).registration.endpoint.port
        }
        #expect(port(10) == 8001 && port(99) == 8001)
        #expect(port(100) == 8002 && port(999) == 8002)
        #expect(port(1000) == 8003 && port(50_000) == 8003)
        // Fewer workers than buckets: long prompts share the last worker.
        #expect(policy.choose(among: Array(workers.prefix(1)), for: .init(promptText: "short")).registration.endpoint.port == 8001)
    }

    @Test func promptTextOfCompletionsAndChat() {
        #expect(PromptText.of(["prompt": "Hello"]) == "Hello")
        #expect(PromptText.of(["prompt": ["a", "b"]]) == "a\nb")
        #expect(PromptText.of(["messages": [["role": "user", "content": "Hi"],
                                            ["role": "assistant", "content": [["type": "text", "text": "Yo"]]]]]) == "user\nHi\nassistant\nYo\n")
        #expect(PromptText.of([:]) == "")
    }
}
