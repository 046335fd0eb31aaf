import Foundation
import Testing
import Tokenization

/// The Jinja subset itself: syntax, whitespace control, scoping, filters, and the errors for
/// what it does not support.
struct ChatTemplateTests {
    func render(_ source: String, _ extra: [String: ChatTemplateValue] = [:], messages: [ChatMessage] = []) throws -> String {
        try ChatTemplate(source: source).render(messages: messages, addGenerationPrompt: false, extra: extra)
    }

    @Test func expressionsAndOperators() throws {
        #expect(try render("{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ 2 ** 10 }}|{{ 7 / 2 }}") == "7|3|-4|1|1024|3.5")
        #expect(try render("{{ 'a' ~ 1 ~ none }}|{{ 'x' + 'y' }}|{{ [1, 2] + [3] }}") == "a1None|xy|[1, 2, 3]")
        #expect(try render("{{ 1 < 2 and not 3 > 4 }}|{{ 'b' in 'abc' }}|{{ 2 not in [1, 2] }}|{{ none or 'd' }}") == "True|True|False|d")
        #expect(try render("{{ 'yes' if x is defined else 'no' }}{{ x is not defined }}") == "noTrue")
        #expect(try render("{{ s[1:] }}|{{ s[:-1] }}|{{ s[::-1] }}|{{ s[-1] }}", ["s": .string("abcd")]) == "bcd|abc|dcba|d")
        #expect(try render("{{ {'a': 1, 'b': [true, none]} | tojson }}") == "{\"a\": 1, \"b\": [true, null]}")
        #expect(try render("{{ d.k }}{{ d['k'] }}{{ d.missing }}{{ d.get('missing', 'z') }}",
                           ["d": .object([(key: "k", value: .string("v"))])]) == "vvz")
    }

    @Test func whitespaceControlFollowsHuggingFaceSettings() throws {
        // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it.
        #expect(try render("{% if true %}\n    a\n    {% endif %}\nb") == "    a\nb")
        #expect(try render("x  {%- if true -%}  y  {%- endif -%}  z") == "xyz")
        #expect(try render("a {{- ' b ' -}} c") == "a b c")
        #expect(try render("{# a comment #}\nx") == "x")
        #expect(try render("{{ 'a' }}\n{{ 'b' }}") == "a\nb")
        #expect(try render("{% if true +%}\nkept{% endif %}") == "\nkept")
        // Jinja drops one trailing newline of the template and reads "\r\n" as "\n".
        #expect(try render("a\r\nb\n") == "a\nb")
        #expect(try render("a\n\n") == "a\n")
    }

    @Test func loopsScopeAndNamespaces() throws {
        let items = ChatTemplateValue.array([.string("a"), .string("b"), .string("c")])
        #expect(try render("{% for x in xs %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", ["xs": items]) == "1a,2b,3c")
        #expect(try render("{% for x in xs if x != 'b' %}{{ loop.index0 }}/{{ loop.length }}{{ x }} {% endfor %}", ["xs": items]) == "0/2a 1/2c ")
        #expect(try render("{% for x in [] %}x{% else %}empty{% endfor %}") == "empty")
        // A set inside a loop does not outlive it; a namespace's attribute does.
        #expect(try render("{% set n = 0 %}{% set ns = namespace(n=0) %}{% for x in xs %}{% set n = n + 1 %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ n }}{{ ns.n }}", ["xs": items]) == "03")
        #expect(try render("{% for x in xs %}{% if x == 'b' %}{% break %}{% endif %}{{ x }}{% endfor %}", ["xs": items]) == "a")
        #expect(try render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
                           ["d": .object([(key: "z", value: .int(1)), (key: "a", value: .int(2))])]) == "z=1;a=2;")
    }

    @Test func filters() throws {
        #expect(try render("{{ '  hi  ' | trim }}|{{ 'Hi' | upper }}{{ 'Hi' | lower }}|{{ 'hello world' | capitalize }}|{{ 'hello world' | title }}") == "hi|HIhi|Hello world|Hello World")
        #expect(try render("{{ xs | length }}{{ xs | join('-') }}{{ xs | first }}{{ xs | last }}{{ missing | default('dflt') }}",
                           ["xs": .array([.string("a"), .string("b")])]) == "2a-babdflt")
        #expect(try render("{{ xs | reject('equalto', 'a') | list }}{{ xs | select('equalto', 'a') | list }}",
                           ["xs": .array([.string("a"), .string("b")])]) == "['b']['a']")
        #expect(try render("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}",
                           messages: [ChatMessage(role: "user", content: "1"), ChatMessage(role: "assistant", content: "2"), ChatMessage(role: "user", content: "3")])
                .isEmpty)
        #expect(try render("{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}",
                           messages: [ChatMessage(role: "user", content: "1"), ChatMessage(role: "assistant", content: "2"), ChatMessage(role: "user", content: "3")])
                == "1,3")
        #expect(try render("{{ {'a': [1, 2]} | tojson(indent=2) }}") == "{\n  \"a\": [\n    1,\n    2\n  ]\n}")
        #expect(try render("{{ 'é\n\"' | tojson }}") == "\"é\\n\\\"\"")
    }

    @Test func raiseException() throws {
        #expect(throws: ChatTemplateError.raised("roles must alternate")) {
            try render("{{ raise_exception('roles must alternate') }}")
        }
        #expect(ChatTemplateError.raised("x").description == "chat template: x")
    }

    @Test func unsupportedConstructsAreNamedWithTheirPlace() throws {
        #expect(throws: ChatTemplateError.unsupported("tag 'macro' at line 2, column 4")) {
            try ChatTemplate(source: "hello\n{% macro greet(name) %}hi{% endmacro %}")
        }
        #expect(throws: ChatTemplateError.unsupported("filter 'wordwrap' at line 1, column 11")) {
            try ChatTemplate(source: "{{ text | wordwrap(10) }}")
        }
        #expect(throws: ChatTemplateError.unsupported("test 'escaped' at line 1, column 12")) {
            try ChatTemplate(source: "{% if x is escaped %}{% endif %}")
        }
        #expect(throws: ChatTemplateError.unsupported("function 'cycler' at line 1, column 4")) {
            try ChatTemplate(source: "{{ cycler('a', 'b') }}")
        }
        #expect(throws: ChatTemplateError.unsupported("block assignment '{% set x %}…{% endset %}' at line 1, column 4")) {
            try ChatTemplate(source: "{% set x %}a{% endset %}")
        }
        let description = ChatTemplateError.unsupported("tag 'macro' at line 2, column 4").description
        #expect(description == "chat template: unsupported tag 'macro' at line 2, column 4")
    }

    @Test func syntaxErrorsAreNamedWithTheirPlace() throws {
        #expect(throws: ChatTemplateError.syntax("'{% if %}' is missing its '{% endif %}' at line 1, column 15")) {
            try ChatTemplate(source: "{% if x %}text")
        }
        #expect(throws: ChatTemplateError.syntax("'{{' is never closed at line 2, column 1")) {
            try ChatTemplate(source: "ok\n{{ x ")
        }
        #expect(throws: ChatTemplateError.syntax("unexpected '{% endfor %}' at line 1, column 4")) {
            try ChatTemplate(source: "{% endfor %}")
        }
    }

    @Test func renderErrors() throws {
        #expect(throws: ChatTemplateError.render("'message' is undefined (reading its attribute 'role')")) {
            try render("{{ message.role }}")
        }
    }

    @Test func templateFromFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-template-\(getpid()).jinja").path
        try "{{ messages[0].content }}".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let template = try ChatTemplate.fromFile(path)
        #expect(try template.render(messages: [ChatMessage(role: "user", content: "x")], addGenerationPrompt: true) == "x")
        #expect(throws: ChatTemplateError.unreadableFile("/nonexistent/t.jinja")) {
            try ChatTemplate.fromFile("/nonexistent/t.jinja")
        }
    }
}
