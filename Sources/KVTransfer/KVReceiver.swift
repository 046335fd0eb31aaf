import Engine
import Foundation
import PDProtocol
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The decode instance D's side of the transfer: it serves the PD-comm port (handshake, block
/// reservation, ipc write notices, the first token) and the cache-queue port (tcp KV writes).
///
/// A PD request is expected once D's own leg has reserved its blocks (`expect`); P's
/// connection for it may arrive first and waits for that (until the deadline). Every write is
/// checked: block ids must be blocks of that reservation still to be sent, lengths must match
/// the layout, and the checksum must match what D finds in its blocks. Only when every prompt
/// block of every layer is verified does the first token start decoding.
public final class KVReceiver: Sendable {
    public let engine: ServingEngine
    public let layout: KVLayoutDescription
    /// Transfer protocols D accepts (ipc only when its cache is shared memory).
    public let protocols: [TransferProtocol]
    let timeout: Duration
    private let expected = Mutex<[String: Expectation]>([:])
    /// Leases on D's shared-memory blocks for ipc peers (`IPCLeaseTable`).
    private let leases: Result<IPCLeaseTable, TransferError>
    private let arrived = NSCondition()

    /// One reservation and what has been verified in it.
    final class Expectation: Sendable {
        let reservation: KVImportReservation
        let promptHash: UInt64
        let promptTokens: Int
        let toSend: Set<Int32>
        /// (layer, block) pairs written and verified.
        let verified = Mutex<Set<Int64>>([])
        let handshaken = Mutex(false)

        init(reservation: KVImportReservation, promptHash: UInt64, promptTokens: Int) {
            self.reservation = reservation
            self.promptHash = promptHash
            self.promptTokens = promptTokens
            toSend = Set(reservation.blockTable[reservation.cachedBlocks..<reservation.promptBlocks])
        }
    }

    public init(engine: ServingEngine, layout: KVLayoutDescription, protocols: [TransferProtocol], timeout: Duration) {
        self.engine = engine
        self.layout = layout
        self.protocols = protocols
        self.timeout = timeout
        do { leases = .success(try IPCLeaseTable(slots: engine.cacheLayout.numBlocks)) } catch {
            leases = .failure(error as? TransferError ?? TransferError("\(error)"))
        }
    }

    /// Serves connections on a listening socket (the held PD-comm or cache-queue port) on a
    /// thread of its own, for the process's life.
    public func serve(listeningDescriptor fd: Int32, name: String) {
        let thread = Thread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    FileHandle.standardError.write(Data("api-server: accept on the \(name) port failed: \(String(cString: strerror(errno)))\n".utf8))
                    return
                }
                Thread.detachNewThread { [self] in
                    // A second past the transfer timeout: the reservation's own deadline (which
                    // started earlier) is the one that ends a transfer, with its message.
                    let connection = FrameConnection(fd: client, deadline: .now + timeout + .seconds(1), peer: "the prefill instance")
                    handle(connection)
                }
            }
        }
        thread.name = "tandem-pd-\(name)"
        thread.start()
    }

    /// D's leg reserved blocks for a request: P's connection for it may proceed.
    public func expect(_ reservation: KVImportReservation, promptTokens: [Int32]) {
        let expectation = Expectation(reservation: reservation, promptHash: PDHello.hash(tokens: promptTokens),
                                      promptTokens: promptTokens.count)
        expected.withLock { $0[reservation.requestID] = expectation }
        arrived.lock()
        arrived.broadcast()
        arrived.unlock()
    }

    /// D's leg ended (whatever the outcome): forget the request.
    public func forget(_ reservation: KVImportReservation) {
        expected.withLock { table in
            if table[reservation.requestID]?.reservation == reservation { table[reservation.requestID] = nil }
        }
    }

    private func waitForExpectation(_ id: String, deadline: ContinuousClock.Instant) -> Expectation? {
        arrived.lock()
        defer { arrived.unlock() }
        while true {
            if let found = expected.withLock({ $0[id] }) { return found }
            let left = deadline - .now
            guard left > .zero else { return nil }
            _ = arrived.wait(until: Date(timeIntervalSinceNow: min(left.inSeconds, 0.2)))
        }
    }

    private func handle(_ connection: FrameConnection) {
        do {
            guard let header = try connection.receiveHeader() else { return }
            switch header.kind {
            case .hello: try control(connection, hello: try connection.receivePayload(header, as: PDHello.self))
            case .attach: try data(connection, attach: try connection.receivePayload(header, as: PDAttach.self))
            default: throw TransferError("a PD connection must start with hello or attach, not \(header.kind)")
            }
        } catch {
            try? connection.send(.failure, json: PDFailure(requestID: "", message: "\(error)"))
        }
    }

    // MARK: The control connection (PD-comm port)

    private func control(_ connection: FrameConnection, hello: PDHello) throws {
        let id = hello.requestID
        guard let expectation = waitForExpectation(id, deadline: connection.deadline) else {
            try connection.send(.failure, json: PDFailure(
                requestID: id, message: "the decode instance has no request '\(id)' waiting for KV (its leg did not arrive within the transfer timeout, or it already ended)"))
            return
        }
        let reservation = expectation.reservation
        func refuse(_ message: String) throws {
            engine.failImport(reservation, message: message)
            try connection.send(.failure, json: PDFailure(requestID: id, message: message))
        }
        if let mismatch = layout.mismatch(prefill: hello.layout) { return try refuse(mismatch) }
        guard hello.promptTokens == expectation.promptTokens, hello.promptHash == expectation.promptHash else {
            return try refuse("the prefill instance tokenized request '\(id)' to \(hello.promptTokens) tokens (hash \(hello.promptHash)) but the decode instance to \(expectation.promptTokens) (hash \(expectation.promptHash))")
        }
        guard protocols.contains(hello.transferProtocol), hello.transferProtocol != .rdma else {
            return try refuse("the decode instance does not accept transfer protocol \(hello.transferProtocol.rawValue) (it offers \(protocols.map(\.rawValue).joined(separator: ",")))")
        }
        let isIPC = hello.transferProtocol == .ipc
        var region: IPCRegion?
        if isIPC {
            guard let memory = engine.sharedKVMemory else {
                return try refuse("the decode instance's KV cache is not in shared memory (start it with ipc in --cache-transfer-protocol)")
            }
            let leases: IPCLeaseTable
            switch self.leases {
            case .success(let table): leases = table
            case .failure(let error): return try refuse("the decode instance cannot lend its blocks over ipc: \(error)")
            }
            guard let lease = leases.grant() else { return try refuse("the decode instance has no ipc lease slot free") }
            region = IPCRegion(path: memory.path, instanceID: memory.instanceID, byteCount: memory.byteCount,
                               numBlocks: engine.cacheLayout.numBlocks, lease: lease)
        }
        guard engine.pinImport(reservation) else {
            if case .success(let leases) = leases, let lease = region?.lease { leases.revoke(lease) }
            try connection.send(.failure, json: PDFailure(requestID: id, message: KVImportError.notAwaiting(id).description))
            return
        }
        // An ipc peer may write into the blocks until its lease is revoked: they stay pinned
        // until then, whatever happens to the request.
        defer {
            if case .success(let leases) = leases, let lease = region?.lease { leases.revoke(lease) }
            engine.unpinImport(reservation)
        }
        expectation.handshaken.withLock { $0 = true }
        engine.renewImportDeadline(reservation, stage: .prefillStart)  // P queues the request now
        try connection.send(.reservation, json: PDReservation(
            requestID: id, blockIDs: reservation.blockTable, cachedBlocks: reservation.cachedBlocks,
            promptBlocks: reservation.promptBlocks, bytesPerLayerBlock: engine.cacheLayout.bytesPerLayerBlock, ipc: region))
        do {
            try controlLoop(connection, expectation, ipc: isIPC)
        } catch {
            engine.failImport(reservation, message: "KV transfer from the prefill instance failed: \(error)")
            try? connection.send(.failure, json: PDFailure(requestID: id, message: "\(error)"))
        }
    }

    /// Throws once the reservation no longer waits (it ended: aborted or timed out); else keeps
    /// `connection`'s deadline a second past the reservation's, which its stages move on.
    private func follow(_ reservation: KVImportReservation, on connection: FrameConnection) throws {
        guard let deadline = engine.importDeadline(reservation) else {
            throw TransferError("request '\(reservation.requestID)' ended on the decode instance (aborted or timed out)")
        }
        connection.deadline = deadline + .seconds(1)
    }

    private func controlLoop(_ connection: FrameConnection, _ expectation: Expectation, ipc: Bool) throws {
        let reservation = expectation.reservation
        let tick = { try self.follow(reservation, on: connection) }
        while true {
            try tick()
            guard let header = try connection.receiveHeader(tick: tick) else {
                throw TransferError("the prefill instance closed the connection before handing over the first token")
            }
            switch header.kind {
            case .prefillWaiting, .prefillStarted, .prefillRunning:
                _ = try connection.receivePayload(header, as: PDPrefillProgress.self)
                engine.renewImportDeadline(reservation, stage: header.kind == .prefillWaiting ? .prefillStart : .transfer)
            case .kvWritten where ipc:
                let write = try KVWriteHeader(decoding: try connection.receiveBytes(header.length))
                try verify(write, expectation)
                engine.renewImportDeadline(reservation, stage: .transfer)
                try connection.send(.ack, json: PDAck(layer: write.layer, blocks: write.blockIDs.count))
            case .firstToken:
                let first = try connection.receivePayload(header, as: PDFirstToken.self)
                let missing = expectation.toSend.count * layout.layers - expectation.verified.withLock { $0.count }
                guard missing == 0 else {
                    throw TransferError("the first token arrived with \(missing) (layer, block) writes of request '\(reservation.requestID)' missing")
                }
                let token = SampledToken(token: first.token, logprob: first.logprob,
                                         topLogprobs: first.topLogprobs.map { TokenLogprob(token: $0.token, logprob: $0.logprob) })
                let promptLogprobs = first.promptLogprobs?.map { entry in
                    entry.map { PromptTokenLogprob(token: $0.token, logprob: $0.logprob,
                                                   topLogprobs: $0.topLogprobs.map { TokenLogprob(token: $0.token, logprob: $0.logprob) }) }
                }
                try engine.completeImport(reservation, firstToken: token, promptLogprobs: promptLogprobs)
                try connection.send(.done, json: PDDone(requestID: reservation.requestID))
                return
            case .failure:
                let failure = try connection.receivePayload(header, as: PDFailure.self)
                throw TransferError("the prefill instance gave up: \(failure.message)")
            default:
                throw TransferError("unexpected \(header.kind) frame on the PD-comm connection")
            }
        }
    }

    /// Checks a write's block ids, lengths and checksum against D's blocks; records it.
    private func verify(_ write: KVWriteHeader, _ expectation: Expectation) throws {
        try checkShape(write, expectation)
        let sum = KVChecksum.of(write.blockIDs.map { UnsafeRawBufferPointer(engine.importDestination(layer: write.layer, block: $0)) })
        guard sum == write.checksum else {
            throw TransferError("checksum mismatch in layer \(write.layer) of request '\(expectation.reservation.requestID)' (sent \(write.checksum), found \(sum))")
        }
        expectation.verified.withLock { set in
            for block in write.blockIDs { set.insert(Int64(write.layer) << 32 | Int64(block)) }
        }
    }

    private func checkShape(_ write: KVWriteHeader, _ expectation: Expectation) throws {
        let id = expectation.reservation.requestID
        guard (0..<layout.layers).contains(write.layer) else {
            throw TransferError("KV write for layer \(write.layer) of request '\(id)': the model has \(layout.layers) layers")
        }
        guard write.bytesPerBlock == engine.cacheLayout.bytesPerLayerBlock else {
            throw TransferError("KV write of \(write.bytesPerBlock) bytes per block for request '\(id)': a block is \(engine.cacheLayout.bytesPerLayerBlock) bytes")
        }
        if let bad = write.blockIDs.first(where: { !expectation.toSend.contains($0) }) {
            throw TransferError("KV write into block \(bad), which request '\(id)' did not ask P to write")
        }
    }

    // MARK: The data connection (cache-queue port, tcp)

    private func data(_ connection: FrameConnection, attach: PDAttach) throws {
        let id = attach.requestID
        guard let expectation = expected.withLock({ $0[id] }), expectation.handshaken.withLock({ $0 }) else {
            throw TransferError("no KV transfer for request '\(id)' is under way on this decode instance")
        }
        let reservation = expectation.reservation
        guard engine.pinImport(reservation) else { throw TransferError(KVImportError.notAwaiting(id).description) }
        defer { engine.unpinImport(reservation) }
        let tick = { try self.follow(reservation, on: connection) }
        do {
            while let header = try connection.receiveHeader(tick: tick) {
                try tick()  // a request that ended takes no more writes, even from a busy peer
                guard header.kind == .kvData else { throw TransferError("expected KV data on the cache-queue connection, got \(header.kind)") }
                let fixed = try connection.receiveBytes(UInt64(KVWriteHeader.fixedSize))
                let shape = try KVWriteHeader.decodeFixed(fixed)
                guard shape.blockCount <= expectation.toSend.count else {
                    throw TransferError("KV write of \(shape.blockCount) blocks for request '\(id)', which has \(expectation.toSend.count) to send")
                }
                let ids = try connection.receiveBytes(UInt64(4 * shape.blockCount))
                let write = try KVWriteHeader(decoding: fixed + ids)
                try checkShape(write, expectation)
                guard header.length == UInt64(write.encodedSize + write.dataBytes) else {
                    throw TransferError("KV frame of \(header.length) bytes for \(write.blockIDs.count) blocks of \(write.bytesPerBlock) bytes")
                }
                for block in write.blockIDs {
                    try connection.receive(into: engine.importDestination(layer: write.layer, block: block), allowEOF: false, tick: nil)
                }
                try verify(write, expectation)
                engine.renewImportDeadline(reservation, stage: .transfer)
                try connection.send(.ack, json: PDAck(layer: write.layer, blocks: write.blockIDs.count))
            }
        } catch {
            engine.failImport(reservation, message: "KV transfer from the prefill instance failed: \(error)")
            throw error
        }
    }
}
