import Synchronization

/// `--max-concurrent-requests` with a bounded FIFO wait queue: beyond the limit a request
/// waits for a slot; when `maxWaiting` are already waiting it is refused at once (429), and
/// one that waits longer than `queueTimeout` is refused then (408).
public final class AdmissionQueue: Sendable {
    public struct Settings: Sendable {
        /// 0: no limit (the queue is never used).
        public var maxConcurrent: Int
        public var maxWaiting: Int
        public var queueTimeout: Duration

        public init(maxConcurrent: Int = 0, maxWaiting: Int = 100, queueTimeout: Duration = .seconds(60)) {
            self.maxConcurrent = max(0, maxConcurrent)
            self.maxWaiting = max(0, maxWaiting)
            self.queueTimeout = queueTimeout
        }
    }

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, any Error>
        var timer: Task<Void, Never>?
    }

    private struct State {
        var running = 0
        var nextID: UInt64 = 0
        var waiters: [Waiter] = []
    }

    public let settings: Settings
    private let state = Mutex(State())

    public init(settings: Settings) {
        self.settings = settings
    }

    public var running: Int { state.withLock { $0.running } }
    public var waiting: Int { state.withLock { $0.waiters.count } }

    /// Takes a slot, waiting in line when all are taken. Throws `RouterError.queueFull` or
    /// `.queueTimeout`, or CancellationError when the waiting task is cancelled.
    public func acquire() async throws {
        let limit = settings.maxConcurrent
        guard limit > 0 else { return }
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Decision { case admitted, full(waiting: Int, running: Int), queued }
                let decision = state.withLock { state -> Decision in
                    if state.running < limit {
                        state.running += 1
                        return .admitted
                    }
                    if state.waiters.count >= settings.maxWaiting {
                        return .full(waiting: state.waiters.count, running: state.running)
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return .queued
                }
                switch decision {
                case .admitted:
                    continuation.resume()
                case .full(let waiting, let running):
                    continuation.resume(throwing: RouterError.queueFull(waiting: waiting, running: running))
                case .queued:
                    let timeout = settings.queueTimeout
                    let timer = Task { [weak self] in
                        try? await Task.sleep(for: timeout)
                        guard !Task.isCancelled else { return }
                        self?.remove(id)?.continuation.resume(throwing: RouterError.queueTimeout(after: timeout))
                    }
                    let stillWaiting = state.withLock { state -> Bool in
                        guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return false }
                        state.waiters[index].timer = timer
                        return true
                    }
                    if !stillWaiting { timer.cancel() }
                }
            }
        } onCancel: {
            remove(id)?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Takes a slot if one is free and nobody waits for one, without waiting: false when the
    /// request has to go through `acquire` (to wait in line, or be refused).
    public func tryAcquire() -> Bool {
        let limit = settings.maxConcurrent
        guard limit > 0 else { return true }
        return state.withLock { state in
            guard state.running < limit, state.waiters.isEmpty else { return false }
            state.running += 1
            return true
        }
    }

    /// Gives a slot back: to the first waiter, if any.
    public func release() {
        guard settings.maxConcurrent > 0 else { return }
        let next = state.withLock { state -> Waiter? in
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.running -= 1
            return nil
        }
        next?.timer?.cancel()
        next?.continuation.resume()
    }

    private func remove(_ id: UInt64) -> Waiter? {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.timer?.cancel()
        return waiter
    }
}
