import Engine
import Foundation
import Hummingbird

/// An error in OpenAI's shape, `{"error":{"message","type","param","code"}}`, with its HTTP
/// status. Every failure a client can see goes through this type.
public struct OpenAIError: Error, HTTPResponseError, Equatable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Seconds a client should wait before retrying (`Retry-After`, with 429 and 503).
    public var retryAfter: Int?

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil,
                retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    /// A request parameter with a bad value or type (400, naming it).
    public static func invalidParameter(_ param: String, _ message: String) -> OpenAIError {
        OpenAIError(status: .badRequest, message: message, type: "invalid_request_error", param: param)
    }

    public static func invalidRequest(_ message: String, param: String? = nil) -> OpenAIError {
        OpenAIError(status: .badRequest, message: message, type: "invalid_request_error", param: param)
    }

    public static func malformedJSON(_ detail: String) -> OpenAIError {
        OpenAIError(status: .badRequest, message: "We could not parse the JSON body of your request: \(detail)",
                    type: "invalid_request_error")
    }

    public static func modelNotFound(_ model: String) -> OpenAIError {
        OpenAIError(status: .notFound, message: "The model `\(model)` does not exist.", type: "invalid_request_error",
                    param: "model", code: "model_not_found")
    }

    public static let unauthorized = OpenAIError(
        status: .unauthorized, message: "Incorrect API key provided: send it as 'Authorization: Bearer <key>'.",
        type: "invalid_request_error", code: "invalid_api_key")

    public static func bodyTooLarge(limit: Int) -> OpenAIError {
        OpenAIError(status: .contentTooLarge, message: "The request body is larger than the limit of \(limit) bytes.",
                    type: "invalid_request_error", code: "request_too_large")
    }

    public static func notFound(_ path: String) -> OpenAIError {
        OpenAIError(status: .notFound, message: "No route for \(path).", type: "invalid_request_error", code: "not_found")
    }

    public static func notServing(_ why: String) -> OpenAIError {
        OpenAIError(status: .serviceUnavailable, message: "The server is not serving: \(why).", type: "service_unavailable",
                    code: "service_unavailable", retryAfter: 1)
    }

    public static func internalError(_ message: String) -> OpenAIError {
        OpenAIError(status: .internalServerError, message: message, type: "server_error", code: "internal_error")
    }

    /// The engine's refusals: too long or too big for the pool 400, queue full 429, not serving 503.
    public init(_ admission: AdmissionError) {
        switch admission {
        case .tooLong:
            self = .invalidRequest(admission.description)
            code = "context_length_exceeded"
        case .exceedsCachePool:
            self = .invalidRequest("This request cannot fit in the KV cache: \(admission.description).")
            code = "context_length_exceeded"
        case .queueFull:
            self = OpenAIError(status: .tooManyRequests, message: "The server is busy: \(Self.queueDetail(admission)).",
                               type: "rate_limit_error", code: "queue_full", retryAfter: 1)
        case .notServing(let why):
            self = .notServing(why)
        case .invalid(let why):
            self = .invalidRequest(why)
        }
    }

    private static func queueDetail(_ admission: AdmissionError) -> String {
        if case .queueFull(let waiting, let limit) = admission {
            return "\(waiting) requests are waiting (limit \(limit)); retry later"
        }
        return admission.description
    }

    struct Body: Codable, Equatable {
        struct Detail: Codable, Equatable {
            var message: String
            var type: String
            var param: String?
            var code: String?

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(message, forKey: .message)
                try container.encode(type, forKey: .type)
                // OpenAI sends param and code as null rather than leaving them out.
                try container.encode(param, forKey: .param)
                try container.encode(code, forKey: .code)
            }
        }
        var error: Detail
    }

    public var jsonBody: Data {
        (try? JSONEncoder.api.encode(Body(error: .init(message: message, type: type, param: param, code: code)))) ?? Data()
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: jsonBody)))
    }
}

extension JSONEncoder {
    /// How every API response is encoded: no escaped slashes; sorted keys for stable output.
    static var api: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
