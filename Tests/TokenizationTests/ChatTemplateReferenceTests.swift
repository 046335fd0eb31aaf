import Foundation
import GGUF
import Testing
import TestSupport
import Tokenization

/// Real models' chat templates rendered by Tandem and by Python's jinja2 (configured as
/// Hugging Face's apply_chat_template) must agree exactly, errors included.
struct ChatTemplateReferenceTests {
    /// A JSON value that both sides understand: Encodable for Python, ChatTemplateValue for Swift.
    indirect enum JSON: Encodable {
        case string(String), int(Int), bool(Bool), array([JSON]), object([(String, JSON)])

        func encode(to encoder: any Encoder) throws {
            switch self {
            case .string(let s): var c = encoder.singleValueContainer(); try c.encode(s)
            case .int(let i): var c = encoder.singleValueContainer(); try c.encode(i)
            case .bool(let b): var c = encoder.singleValueContainer(); try c.encode(b)
            case .array(let items): var c = encoder.unkeyedContainer(); for item in items { try c.encode(item) }
            case .object(let pairs):
                var c = encoder.container(keyedBy: Key.self)
                for (key, value) in pairs { try c.encode(value, forKey: Key(stringValue: key)) }
            }
        }

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        var templateValue: ChatTemplateValue {
            switch self {
            case .string(let s): .string(s)
            case .int(let i): .int(i)
            case .bool(let b): .bool(b)
            case .array(let items): .array(items.map(\.templateValue))
            case .object(let pairs): .object(pairs.map { (key: $0.0, value: $0.1.templateValue) })
            }
        }
    }

    struct Case: Encodable {
        var messages: [ChatMessage]
        var add_generation_prompt: Bool
        var bos_token = "<s>"
        var eos_token = "</s>"
        var extra: [String: JSON] = [:]
    }

    struct Request: Encodable {
        var template: String
        var cases: [Case]
    }

    struct Outcome: Decodable {
        var output: String?
        var error: String?
    }

    /// Keys in sorted order, as the JSON handed to Python has them.
    static let weatherTool = JSON.object([
        ("function", .object([
            ("description", .string("Current weather in a city — «quoted» \"text\"")),
            ("name", .string("get_weather")),
            ("parameters", .object([
                ("properties", .object([("city", .object([("type", .string("string"))]))])),
                ("required", .array([.string("city")])),
                ("type", .string("object")),
            ])),
        ])),
        ("type", .string("function")),
    ])

    static let conversations: [[ChatMessage]] = [
        [ChatMessage(role: "user", content: "Hello!")],
        [ChatMessage(role: "system", content: "You are terse."), ChatMessage(role: "user", content: "What is 2+2?")],
        [
            ChatMessage(role: "user", content: "  Tell me a joke.  "),
            ChatMessage(role: "assistant", content: "Why did the 🐔 cross the road?\nTo get to the other side."),
            ChatMessage(role: "user", content: "Another, in 日本語 with \"quotes\" and {braces} {{ and }} {% tags %}."),
        ],
        [
            ChatMessage(role: "system", content: "Be kind.\n\nAlways."),
            ChatMessage(role: "user", content: "Hi"),
            ChatMessage(role: "assistant", content: "Hello."),
            ChatMessage(role: "user", content: "Bye"),
        ],
        [ChatMessage(role: "assistant", content: "I start?"), ChatMessage(role: "user", content: "ok")],
        [ChatMessage(role: "user", content: "a"), ChatMessage(role: "tool", content: "{\"temp\": 21}")],
    ]

    static func cases(extras: [[String: JSON]] = [[:]]) -> [Case] {
        var cases: [Case] = []
        for extra in extras {
            for messages in conversations {
                for addGenerationPrompt in [true, false] {
                    cases.append(Case(messages: messages, add_generation_prompt: addGenerationPrompt, extra: extra))
                }
            }
        }
        return cases
    }

    static func templateSource(_ name: String) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Templates/\(name)")
        return try String(contentsOf: url, encoding: .utf8)
    }

    func compareWithJinja2(template source: String, cases: [Case]) throws {
        let template = try ChatTemplate(source: source)
        let expected = try PythonReference.run(
            "jinja_reference.py", input: Request(template: source, cases: cases), as: [Outcome].self)
        for (item, outcome) in try paired(cases, expected, reference: "jinja_reference.py") {
            let rendered = Result {
                try template.render(
                    messages: item.messages, addGenerationPrompt: item.add_generation_prompt,
                    bosToken: item.bos_token, eosToken: item.eos_token,
                    extra: item.extra.mapValues(\.templateValue))
            }
            switch rendered {
            case .success(let text):
                #expect(outcome.error == nil, "jinja2 failed where Tandem did not: \(outcome.error ?? "")")
                #expect(text == outcome.output, "\(item.messages)")
            case .failure(let error):
                #expect(error as? ChatTemplateError == .raised(outcome.error ?? "(jinja2 rendered it)"), "\(error)")
            }
        }
    }

    @Test(arguments: ["llama3.jinja", "mistral-instruct.jinja", "mistralai-Mistral-Nemo-Instruct-2407.jinja", "features.jinja"])
    func templateMatchesJinja2(name: String) throws {
        try compareWithJinja2(template: try Self.templateSource(name), cases: Self.cases())
    }

    @Test func qwen25WithAndWithoutTools() throws {
        try compareWithJinja2(
            template: try Self.templateSource("qwen2.5.jinja"),
            cases: Self.cases(extras: [[:], ["tools": .array([Self.weatherTool])]]))
    }

    @Test func llama32WithAndWithoutTools() throws {
        try compareWithJinja2(
            template: try Self.templateSource("meta-llama-Llama-3.2-3B-Instruct.jinja"),
            cases: Self.cases(extras: [
                ["date_string": .string("23 Nov 2026")],
                ["date_string": .string("23 Nov 2026"), "tools": .array([Self.weatherTool])],
                ["date_string": .string("1 Jan 2025"), "tools": .array([Self.weatherTool]), "tools_in_user_message": .bool(false)],
            ]))
    }

    /// Strings of whitespace where implementations part ways: tabs, each kind of newline
    /// (`\r\n`, U+0085, U+2028, U+2029, vertical tab, form feed), the ASCII separators U+001C…U+001F
    /// (whitespace to Python), non-ASCII spaces (U+00A0, U+2003, U+3000), a space carrying a
    /// combining accent, and the zero-width space (whitespace to neither).
    static let whitespaceStrings = [
        "\ta\tb\t", "\n\nx\ny\n", "\u{00A0}nb\u{00A0}sp\u{00A0}", "\u{2003}em\u{2003}space\u{2003}",
        "\u{3000}全角\u{3000}空白\u{3000}", "line1\r\nline2\r\n", "x\u{2028}y\u{2029}z", "\u{85}next line\u{85}",
        "\u{0B}vt\u{0C}ff\u{0C}", "\u{1C}fs\u{1D}gs\u{1E}rs\u{1F}", " \u{0301}acc ", "\u{200B}zero width\u{200B}",
        "mixed \t\u{00A0} runs\u{3000} of  space", "a-b c,d (e) [f] <g> {h} x_y 3.5", "", " ", "\t\n\u{00A0}\u{2003}\u{3000}",
    ]

    /// Every filter, string method and operator that treats whitespace, one case per string,
    /// against jinja2.
    @Test func whitespaceFiltersAndMethodsMatchJinja2() throws {
        let source = #"""
            {% for m in messages %}
            {% set s = m.content %}
            trim<{{ s | trim }}> strip<{{ s.strip() }}> lstrip<{{ s.lstrip() }}> rstrip<{{ s.rstrip() }}>
            strip-chars<{{ s.strip(' \t') }}> split<{{ s.split() | join('/') }}> split-tab<{{ s.split('\t') | join('/') }}>
            wordcount<{{ s | wordcount }}> length<{{ s | length }}> title<{{ s | title }}> capitalize<{{ s | capitalize }}>
            indent<{{ s | indent(2) }}> indent-first<{{ s | indent(2, true) }}> indent-text<{{ s | indent('> ') }}>
            tojson<{{ s | tojson }}> replace<{{ s | replace('\n', '\\n') }}> replace-method<{{ s.replace('\r', '\\r') }}>
            in<{{ '\n' in s }}|{{ '\r' in s }}> starts<{{ s.startswith('\r') }}|{{ s.startswith('\t') }}> ends<{{ s.endswith('\n') }}>
            {% endfor %}
            """#
        let cases = Self.whitespaceStrings.map {
            Case(messages: [ChatMessage(role: "user", content: $0)], add_generation_prompt: false)
        }
        try compareWithJinja2(template: source, cases: cases)
    }

    @Test func smolLM2TemplateFromTheFileRendersChatML() throws {
        let template = try #require(try ChatTemplate.fromGGUF(DefaultModel.file.get()))
        let source = template.source
        #expect(source == (try DefaultModel.metadata.get().chatTemplate))
        let prompt = try template.render(
            messages: [ChatMessage(role: "system", content: "You are helpful."), ChatMessage(role: "user", content: "Hi there")],
            addGenerationPrompt: true)
        #expect(prompt == "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n")
        let noSystem = try template.render(messages: [ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: false)
        #expect(noSystem == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
        try compareWithJinja2(template: source, cases: Self.cases())
    }
}
