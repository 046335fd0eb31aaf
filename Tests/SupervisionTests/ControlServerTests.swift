import Foundation
import Logging
import Supervision
import Testing

@Suite struct ControlServerTests {
    @Test func aReplyThatCannotBeEncodedIs500AndLoggedNeverAnEmptyObject() {
        struct Reply: Encodable { var value = Double.nan } // JSON has no NaN.
        let lines = CapturedLines()
        let response = ControlServer.json(Reply(), status: .ok, logger: capturingLogger(lines))
        #expect(response.status == .internalServerError)
        #expect(response.headers[.contentType] == "text/plain; charset=utf-8")
        #expect(lines.all.count == 1)
        #expect(lines.contains("error: control endpoint: cannot encode the reply as JSON: "), "\(lines.all)")
    }

    @Test func aReplyThatCanBeEncodedKeepsItsStatus() {
        struct Reply: Encodable { var value = 1.5 }
        let response = ControlServer.json(Reply(), status: .serviceUnavailable, logger: capturingLogger(CapturedLines()))
        #expect(response.status == .serviceUnavailable)
        #expect(response.headers[.contentType] == "application/json")
    }
}
