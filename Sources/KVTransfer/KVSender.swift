import Engine
import Foundation
import PDProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The prefill instance P's side of one request's transfer: handshake and reservation on D's
/// PD-comm port; while the request waits in P's queue, `prefillWaiting` every `heartbeat`; then
/// `prefillStarted` and each layer's blocks as the engine completes them (`KVExportSink`),
/// pushed by a thread of its own while the engine goes on computing: over tcp to D's
/// cache-queue port, or over ipc copied straight into D's shared-memory blocks; and
/// `prefillRunning` whenever P has sent nothing for `heartbeat`. D's deadline is a bound on
/// P's silence, not on the queue or the prefill. The engine never waits for a push: a D that
/// takes no write (or ack) for `timeout` fails this request's transfer only. `finish` waits
/// for every write to be acknowledged, hands over the first token and waits for D's
/// confirmation.
public final class KVSender: KVExportSink, @unchecked Sendable {
    // @unchecked Sendable: the job queue, counters, start and error are only touched while
    // holding `condition`; the connections are used by one thread at a time (the worker writes,
    // the leg's thread reads acknowledgements only after the worker has drained).

    public let reservation: PDReservation
    public let transferProtocol: TransferProtocol
    private let engine: ServingEngine
    private let layers: Int
    private let timeout: Duration
    private let heartbeat: Duration
    private let control: FrameConnection
    private let dataConnection: FrameConnection?
    private let mapping: IPCMapping?
    private let condition = NSCondition()
    private enum Job {
        case started(ContinuousClock.Instant)
        case layer(Int, firstIndex: Int, blocks: [Int32])
    }
    private var jobs: [Job] = []
    private var startedAt: ContinuousClock.Instant?
    /// `finish` has begun: the worker sends no more reports.
    private var finishing = false
    private var busy = false
    private var error: TransferError?
    private var framesSent = 0
    private var blocksSent = 0
    public private(set) var bytesSent = 0
    /// Called once, from the worker, when a write fails (the leg stops the prefill at once).
    private var onFailure: (@Sendable () -> Void)?
    private var firstByteAt: ContinuousClock.Instant?
    private var lastByteAt: ContinuousClock.Instant?

    /// Connects to D and obtains its block reservation (throws D's refusal as is), all within
    /// `timeout`, which then bounds the transfer from the prefill's start.
    public init(engine: ServingEngine, hello: PDHello, decode: PeerEndpoint, timeout: Duration) throws {
        self.engine = engine
        self.timeout = timeout
        heartbeat = min(.seconds(1), timeout / 4)
        layers = hello.layout.layers
        transferProtocol = hello.transferProtocol
        let deadline = ContinuousClock.now + timeout
        guard let pdCommPort = decode.pdCommPort else {
            throw TransferError("the decode instance \(decode.url) has no pd_comm_port in disaggregate_info")
        }
        control = try FrameConnection.connect(host: decode.host, port: pdCommPort, deadline: deadline,
                                              peer: "the decode instance \(decode.host):\(pdCommPort)")
        try control.send(.hello, json: hello)
        reservation = try control.expect(.reservation, as: PDReservation.self)
        switch hello.transferProtocol {
        case .tcp:
            guard let port = decode.cacheQueuePort else {
                throw TransferError("the decode instance \(decode.url) has no cache_queue_port in disaggregate_info (needed for tcp)")
            }
            dataConnection = try FrameConnection.connect(host: decode.host, port: port, deadline: deadline,
                                                         peer: "the decode instance \(decode.host):\(port)")
            try dataConnection!.send(.attach, json: PDAttach(requestID: hello.requestID))
            mapping = nil
        case .ipc:
            guard let region = reservation.ipc else { throw TransferError("the decode instance offered no shared memory for ipc") }
            mapping = try IPCMapping.shared(region)
            dataConnection = nil
        case .rdma:
            throw TransferError("rdma transfer is not available: no RDMA device on this host")
        }
        let worker = Thread { [self] in work() }
        worker.name = "tandem-kv-send"
        worker.start()
    }

    /// Sets what to do when a write fails (before the prefill is over).
    public func whenWriteFails(_ action: @escaping @Sendable () -> Void) {
        condition.lock()
        onFailure = action
        condition.unlock()
    }

    /// The error that stopped the transfer, if any.
    public var failure: TransferError? {
        condition.lock()
        defer { condition.unlock() }
        return error
    }

    // MARK: KVExportSink (engine thread; never blocks)

    public func prefillStarting() {
        let now = ContinuousClock.now
        condition.lock()
        let first = startedAt == nil
        if first {
            startedAt = now
            jobs.append(.started(now))
            condition.broadcast()
        }
        condition.unlock()
    }

    public func layerReady(_ layer: Int, firstBlockIndex: Int, blocks: [Int32]) {
        condition.lock()
        jobs.append(.layer(layer, firstIndex: firstBlockIndex, blocks: blocks))
        condition.broadcast()
        condition.unlock()
    }

    // MARK: The worker

    private func work() {
        condition.lock()
        var nextReport = ContinuousClock.now + heartbeat
        while error == nil {
            guard !jobs.isEmpty else {
                if finishing {
                    condition.wait()
                } else if ContinuousClock.now < nextReport {
                    _ = condition.wait(until: Date(timeIntervalSinceNow: (nextReport - .now) / .seconds(1)))
                } else {
                    let started = startedAt != nil
                    perform { try self.report(started: started) }
                    nextReport = .now + heartbeat
                }
                continue
            }
            nextReport = .now + heartbeat  // every frame tells D that P is alive
            let job = jobs.removeFirst()
            switch job {
            case .started(let instant):
                perform { try self.announceStart(at: instant) }
            case .layer(let layer, let firstIndex, let blocks):
                if let bytes = perform({ try self.push(layer: layer, firstIndex: firstIndex, blocks: blocks) }) {
                    framesSent += 1
                    blocksSent += blocks.count
                    bytesSent += bytes
                }
            }
        }
        condition.broadcast()
        condition.unlock()
    }

    /// Runs `body` without the lock (lock held on entry and exit), marked busy; a failure
    /// becomes the transfer's error (the first one calls `onFailure`).
    @discardableResult
    private func perform<T>(_ body: () throws -> T) -> T? {
        busy = true
        condition.unlock()
        let outcome = Result { try body() }
        condition.lock()
        busy = false
        defer { condition.broadcast() }
        switch outcome {
        case .success(let value):
            return value
        case .failure(let failure):
            if error == nil, let onFailure {
                self.onFailure = nil
                DispatchQueue.global().async { onFailure() }
            }
            error = error ?? (failure as? TransferError ?? TransferError("\(failure)"))
            return nil
        }
    }

    /// P has sent D nothing for `heartbeat`: the request still waits in P's queue (then D
    /// has not given up meanwhile, or it would have said so), or its prefill still runs. Each
    /// report must go out within the timeout.
    private func report(started: Bool) throws {
        control.deadline = .now + timeout
        if !started { try control.throwIfPeerSpoke() }  // after the start, ipc acks come this way
        try control.send(started ? .prefillRunning : .prefillWaiting, json: PDPrefillProgress(requestID: reservation.requestID))
    }

    private func announceStart(at instant: ContinuousClock.Instant) throws {
        control.deadline = .now + timeout
        try control.send(.prefillStarted, json: PDPrefillProgress(requestID: reservation.requestID))
    }

    private func push(layer: Int, firstIndex: Int, blocks: [Int32]) throws -> Int {
        // A D that takes no write for the timeout fails the transfer.
        control.deadline = .now + timeout
        dataConnection?.deadline = .now + timeout
        let end = firstIndex + blocks.count
        guard firstIndex >= reservation.cachedBlocks, end <= reservation.promptBlocks else {
            throw TransferError("blocks \(firstIndex)..<\(end) are outside the ones D asked for (\(reservation.cachedBlocks)..<\(reservation.promptBlocks))")
        }
        let destinations = Array(reservation.blockIDs[firstIndex..<end])
        let sources = blocks.map { engine.exportSource(layer: layer, block: $0) }
        if firstByteAt == nil { firstByteAt = .now }
        defer { lastByteAt = .now }
        var sum = KVChecksum()
        if let mapping, let lease = reservation.ipc?.lease {
            try mapping.underLease(lease, deadline: control.deadline) {
                for (source, destination) in zip(sources, destinations) {
                    sum.add(source)
                    try mapping.write(source, layer: layer, block: destination, bytesPerBlock: reservation.bytesPerLayerBlock)
                }
            }
            let header = KVWriteHeader(layer: layer, blockIDs: destinations, bytesPerBlock: reservation.bytesPerLayerBlock, checksum: sum.value)
            try control.send(.kvWritten, payload: header.bytes)
        } else {
            for source in sources { sum.add(source) }
            let header = KVWriteHeader(layer: layer, blockIDs: destinations, bytesPerBlock: reservation.bytesPerLayerBlock, checksum: sum.value)
            try dataConnection!.send(.kvData, prefix: header.bytes, chunks: sources)
        }
        return sources.reduce(0) { $0 + $1.count }
    }

    // MARK: The end of the transfer (the leg's thread)

    /// Waits until every write is out and acknowledged, hands over the first token and waits
    /// for D's confirmation. Returns the seconds from the first byte sent to the last ack.
    public func finish(firstToken: PDFirstToken) throws -> Double {
        condition.lock()
        finishing = true  // no more reports: the control connection is this thread's from here
        while (!jobs.isEmpty || busy) && error == nil { condition.wait() }
        let failure = error, frames = framesSent, blocks = blocksSent
        condition.unlock()
        if let failure { throw failure }
        let expected = reservation.blocksToSend.count * layers
        guard blocks == expected else {
            throw TransferError("\(blocks) of \(expected) (layer, block) writes were sent")
        }
        let acks = dataConnection ?? control
        for _ in 0..<frames {
            acks.deadline = .now + timeout
            _ = try acks.expect(.ack, as: PDAck.self)
        }
        let seconds = firstByteAt.map { (ContinuousClock.now - $0).inSeconds } ?? 0
        control.deadline = .now + timeout
        try control.send(.firstToken, json: firstToken)
        _ = try control.expect(.done, as: PDDone.self)
        stop()
        return seconds
    }

    /// Tells D the leg failed (best effort) and stops sending.
    public func fail(_ message: String) {
        stopWorker()
        try? control.send(.failure, json: PDFailure(requestID: reservation.requestID, message: message))
        shutdown(control.fd, Int32(SHUT_RDWR))
    }

    /// Stops the worker and unblocks any read or write under way (deadline, abort).
    public func cancel() {
        stopWorker()
        shutdown(control.fd, Int32(SHUT_RDWR))
    }

    /// Returns once the worker writes nothing more (no copy under an ipc lease is under way).
    private func stopWorker() {
        condition.lock()
        error = error ?? TransferError("the transfer was cancelled")
        condition.broadcast()
        if let dataConnection { shutdown(dataConnection.fd, Int32(SHUT_RDWR)) }
        while busy { condition.wait() }
        condition.unlock()
    }

    private func stop() {
        condition.lock()
        error = error ?? TransferError("the transfer is over")
        condition.broadcast()
        condition.unlock()
    }
}

/// D's shared-memory KV storage mapped into this process; kept per D instance and reused.
final class IPCMapping: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; the memory is written only into blocks D
    // reserved for a request this process is sending.
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    let numBlocks: Int
    /// D's lease file (one per D instance, like the mapping).
    private let leaseDescriptor: Int32

    private static let cache = NSLock()
    nonisolated(unsafe) private static var mappings: [(id: String, mapping: IPCMapping)] = []

    static func shared(_ region: IPCRegion) throws -> IPCMapping {
        cache.lock()
        defer { cache.unlock() }
        if let found = mappings.first(where: { $0.id == region.instanceID }) { return found.mapping }
        let mapping = try IPCMapping(region)
        mappings.append((region.instanceID, mapping))
        // A restarted D is a new instance: keep the few most recent mappings only.
        if mappings.count > 4 { mappings.removeFirst() }
        return mapping
    }

    private init(_ region: IPCRegion) throws {
        let fd = open(region.path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw TransferError("cannot open the decode instance's shared KV cache \(region.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let leaseFD = open(region.lease.path, O_RDWR | O_CLOEXEC)
        guard leaseFD >= 0 else {
            throw TransferError("cannot open the decode instance's ipc lease file \(region.lease.path): \(String(cString: strerror(errno)))")
        }
        guard let mapped = mmap(nil, region.byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            close(leaseFD)
            throw TransferError("cannot map the decode instance's shared KV cache: \(String(cString: strerror(errno)))")
        }
        base = mapped
        byteCount = region.byteCount
        numBlocks = region.numBlocks
        leaseDescriptor = leaseFD
    }

    deinit {
        munmap(base, byteCount)
        close(leaseDescriptor)
    }

    /// Runs `copy` holding `lease`'s lock, if D has not revoked the lease (`IPCLeaseTable`).
    func underLease(_ lease: IPCLease, deadline: ContinuousClock.Instant, _ copy: () throws -> Void) throws {
        // D holds the lock only for the moment it takes to revoke.
        while !IPCLeaseLock.lock(slot: lease.slot, fd: leaseDescriptor, wait: false) {
            guard errno == EAGAIN || errno == EACCES, ContinuousClock.now < deadline else {
                throw TransferError("cannot lock the ipc lease of the decode instance's blocks: \(String(cString: strerror(errno)))")
            }
            usleep(500)
        }
        defer { IPCLeaseLock.unlock(slot: lease.slot, fd: leaseDescriptor) }
        guard IPCLeaseLock.read(slot: lease.slot, fd: leaseDescriptor) == lease.generation else {
            throw TransferError("the decode instance took its blocks back (the request ended there)", peerFailed: true)
        }
        try copy()
    }

    func write(_ source: UnsafeRawBufferPointer, layer: Int, block: Int32, bytesPerBlock: Int) throws {
        let offset = (layer * numBlocks + Int(block)) * bytesPerBlock
        guard source.count == bytesPerBlock, block >= 0, offset >= 0, offset + bytesPerBlock <= byteCount else {
            throw TransferError("block \(block) of layer \(layer) lies outside the decode instance's shared KV cache")
        }
        (base + offset).copyMemory(from: source.baseAddress!, byteCount: bytesPerBlock)
    }
}
