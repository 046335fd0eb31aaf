import Foundation
import Testing
import Serving

@Suite struct RequestDecodingTests {
    func decodeError<T: Decodable>(_ type: T.Type, _ json: String) -> OpenAIError? {
        do {
            _ = try RequestDecoding.decode(T.self, from: Data(json.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test func promptsComeInFourShapes() throws {
        let shapes: [(String, PromptInput)] = [
            (#"{"prompt": "hi"}"#, .text("hi")), (#"{"prompt": ["a", "b"]}"#, .texts(["a", "b"])),
            (#"{"prompt": [1, 2]}"#, .tokens([1, 2])), (#"{"prompt": [[1], [2, 3]]}"#, .tokenLists([[1], [2, 3]])),
        ]
        for (json, expected) in shapes {
            #expect(try RequestDecoding.decode(CompletionRequest.self, from: Data(json.utf8)).prompt == expected)
        }
    }

    @Test func chatContentMayBeTextParts() throws {
        let request = try RequestDecoding.decode(ChatCompletionRequest.self, from: Data(
            #"{"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}], "stop": "x"}"#.utf8))
        #expect(request.messages.first?.content == "ab")
        #expect(request.common.stop?.strings == ["x"])
    }

    @Test func errorsNameTheParameter() {
        #expect(decodeError(CompletionRequest.self, "[1]")?.message == "We could not parse the JSON body of your request: the body must be a JSON object")
        #expect(decodeError(CompletionRequest.self, #"{"prompt": {"a": 1}}"#)?.param == "prompt")
        let nested = decodeError(ChatCompletionRequest.self, #"{"messages": [{"content": "hi"}]}"#)
        #expect(nested?.message == "'messages[0].role' is a required property")
        #expect(decodeError(CompletionRequest.self, #"{"prompt": "a", "echo": 3}"#)?.message == "Invalid type for 'echo': expected a boolean")
        #expect(decodeError(CompletionRequest.self, #"{"prompt": "a", "stream_options": 3}"#)?.param == "stream_options")
    }
}
