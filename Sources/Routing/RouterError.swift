import Foundation
import Hummingbird

/// An error the router itself answers, in OpenAI's shape
/// `{"error":{"message","type","param","code"}}` with its HTTP status (workers' own errors are
/// relayed as they are).
public struct RouterError: Error, HTTPResponseError, Equatable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var code: String?

    public init(status: HTTPResponse.Status, message: String, type: String, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.code = code
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    public static let unauthorized = RouterError(
        status: .unauthorized, message: "Registration refused: send the router's --register-token as 'Authorization: Bearer <token>'.",
        type: "invalid_request_error", code: "invalid_register_token")

    public static func malformed(_ what: String, _ detail: String) -> RouterError {
        RouterError(status: .badRequest, message: "We could not parse the JSON body of your \(what): \(detail)",
                    type: "invalid_request_error")
    }

    public static func unhealthyWorker(_ url: String, _ problem: String) -> RouterError {
        RouterError(status: .serviceUnavailable,
                    message: "Worker \(url) was not added: its /health did not answer 200 (\(problem)).",
                    type: "service_unavailable", code: "worker_unhealthy")
    }

    public static func unknownWorker(_ url: String) -> RouterError {
        RouterError(status: .notFound, message: "No worker \(url) is in the router's table.", type: "invalid_request_error",
                    code: "not_found")
    }

    public static func noWorker(_ role: String) -> RouterError {
        RouterError(status: .serviceUnavailable, message: "No healthy \(role) worker is available.",
                    type: "service_unavailable", code: "no_worker")
    }

    public static func queueFull(waiting: Int, running: Int) -> RouterError {
        RouterError(status: .tooManyRequests,
                    message: "The router is at --max-concurrent-requests (\(running) running) and its wait queue is full (\(waiting) waiting): retry later.",
                    type: "rate_limit_error", code: "queue_full")
    }

    public static func queueTimeout(after: Duration) -> RouterError {
        RouterError(status: .requestTimeout,
                    message: "The request waited \(Self.seconds(after)) s in the router's queue without a free slot.",
                    type: "timeout_error", code: "queue_timeout")
    }

    public static func requestTimeout(after: Duration) -> RouterError {
        RouterError(status: .gatewayTimeout, message: "The worker did not finish the request within \(Self.seconds(after)) s.",
                    type: "timeout_error", code: "request_timeout")
    }

    public static func upstreamFailed(attempts: Int, last: String) -> RouterError {
        RouterError(status: .badGateway, message: "The request failed on \(attempts) worker(s); the last error: \(last)",
                    type: "upstream_error", code: "upstream_failed")
    }

    /// Something in the router itself failed (not a worker): a bug to report.
    public static func internalError(_ error: any Error) -> RouterError {
        RouterError(status: .internalServerError, message: "The router failed: \(error)", type: "internal_error", code: "internal")
    }

    public static func notFound(_ path: String) -> RouterError {
        RouterError(status: .notFound, message: "No route for \(path).", type: "invalid_request_error", code: "not_found")
    }

    static func seconds(_ duration: Duration) -> String {
        let (s, atto) = duration.components
        let value = Double(s) + Double(atto) * 1e-18
        return value == value.rounded() ? String(Int(value)) : String(format: "%g", value)
    }

    public var jsonBody: Data {
        var error: [String: Any] = ["message": message, "type": type, "param": NSNull()]
        error["code"] = code ?? NSNull()
        return (try? JSONSerialization.data(withJSONObject: ["error": error], options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response { plainResponse }

    /// The answer: this error's JSON with its status.
    public var plainResponse: Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: jsonBody)))
    }
}
