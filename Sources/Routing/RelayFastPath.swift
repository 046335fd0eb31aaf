import NIOCore
import NIOHTTP1

/// The common case without a Swift task: a mixed worker the policy picks, a free admission
/// slot, and an idle kept-alive connection to that worker on the client's event loop. The
/// exchange runs with futures on that loop, and a whole answer (not a retryable status) is
/// finished right there. Everything else (no slot or worker or idle connection, PD pairs, a
/// failure, a retryable status, a stream) goes to the task path, `serve(_:resume:)`, which
/// settles the try the fast path made as its first turn: one implementation of the rules.
extension Relay {
    /// The first try of an admitted request, begun by the fast path: the worker its policy
    /// picked (each pick moves a stateful policy on, so it is made once), and, when the fast
    /// path claimed that worker and made the exchange, how it ended.
    struct FirstTry: Sendable {
        var worker: WorkerSnapshot
        var context: RelayContext
        var result: Result<UpstreamResponse, any Error>?
    }

    enum FastStart {
        /// `cancel` (on the loop) closes the worker's request when the client goes away before
        /// the outcome.
        case started(EventLoopFuture<FastOutcome>, cancel: () -> Void)
        /// The task path from the start (`resume` nil) or from a picked worker.
        case taskPath(resume: FirstTry?)
    }

    enum FastOutcome: Sendable {
        /// Answered and finished (metrics, worker claim, admission slot): write it.
        case whole(status: Int, contentType: String, body: ByteBuffer)
        /// Settle it on the task path: `serve(request, resume:)`.
        case handOff(FirstTry)
    }

    /// Starts `request` on the fast path, on `loop` (the client's), or says where the task path
    /// takes over.
    func startFast(_ request: RelayRequest, on loop: any EventLoop) -> FastStart {
        guard !settings.splitwise || !pdAvailable, admission.tryAcquire() else { return .taskPath(resume: nil) }
        let now = ContinuousClock.now
        guard let worker = pickMixed(for: mixedRouting(body: request.body), excluding: [], at: now) else {
            // The task path answers that there is no worker.
            admission.release()
            return .taskPath(resume: nil)
        }
        let context = makeContext(request)
        guard let idle = upstream.idleExchange(worker.registration.endpoint, on: loop) else {
            return .taskPath(resume: FirstTry(worker: worker, context: context, result: nil))
        }
        guard table.begin(worker.url, at: now) else {
            idle.putBack()
            return .taskPath(resume: FirstTry(worker: worker, context: context, result: nil))
        }
        context.logger.debug("\(context.requestID): to \(worker.url)")
        let (response, cancel) = idle.start(url: worker.url, path: request.route.rawValue, headers: context.headers, body: request.body,
                                            deadline: context.deadline, limit: settings.maxResponseBytes)
        let outcome = response.map { [self] response -> FastOutcome in
            if case .whole(let body) = response.body, !Self.isRetryable(response.status) {
                completeWhole(status: response.status, from: worker.url, context: context)
                return .whole(status: response.status, contentType: response.contentType, body: body)
            }
            return .handOff(FirstTry(worker: worker, context: context, result: .success(response)))
        }.recover { error in
            .handOff(FirstTry(worker: worker, context: context, result: .failure(error)))
        }
        return .started(outcome, cancel: cancel)
    }

    /// The client went away before a handed-off try was settled: its worker claim ends without
    /// a verdict on the worker, its stream (if any) is closed, and the request is finished.
    func abandon(_ first: FirstTry) {
        if case .success(let response)? = first.result, case .stream(let body) = response.body { body.cancel() }
        if case .some = first.result { table.end(first.worker.url, success: nil, at: .now) }
        metrics.recordError("client_gone")
        // 499: nginx's "client closed request", for the latency histogram's status label.
        first.context.finish.finish(status: 499)
    }
}
