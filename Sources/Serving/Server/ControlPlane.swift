import Engine
import Foundation
import Hummingbird

/// The engine control plane on `--engine-worker-queue-port` (FastDeploy's engine worker queue
/// port): a small HTTP listener for the supervisor and routers.
///   GET  /load   the engine's load (as GET /load on the API port)
///   POST /abort  {"request_id": "cmpl-…"} aborts a response (all its choices) or one engine
///                request; 404 when no such request is running
///   POST /drain  stops admitting requests (/health turns 503); running ones finish
public enum ControlPlane {
    struct AbortRequest: Decodable {
        var requestID: String
        enum CodingKeys: String, CodingKey { case requestID = "request_id" }
    }

    struct AbortReply: Encodable {
        var aborted: [String]
    }

    public static func router(state: ServerState) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("load") { _, _ -> Response in
            try JSONResponse.make(try state.loadedContext().service.load())
        }
        router.post("abort") { request, _ -> Response in
            let body = try RequestDecoding.decode(AbortRequest.self, from: try await APIRoutes.readBody(request, limit: 1 << 16))
            let server = try state.loadedContext()
            guard let engineIDs = server.registry.engineIDs(of: body.requestID) else {
                throw OpenAIError(status: .notFound, message: "No running request has the id '\(body.requestID)'.",
                                  type: "invalid_request_error", param: "request_id", code: "not_found")
            }
            for id in engineIDs { server.service.abort(requestID: id) }
            return try JSONResponse.make(AbortReply(aborted: engineIDs))
        }
        router.post("drain") { _, _ -> Response in
            state.beginDrain()
            return try JSONResponse.make(["status": state.phase.name])
        }
        return router
    }
}
