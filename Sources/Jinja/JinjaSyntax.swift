/// The parsed form of a template.
enum JinjaLiteral: Sendable {
    case none, bool(Bool), int(Int), double(Double), string(String)
}

indirect enum JinjaExpression: Sendable {
    case literal(JinjaLiteral)
    case name(String)
    case list([JinjaExpression])
    case dict([(key: JinjaExpression, value: JinjaExpression)])
    case attribute(JinjaExpression, String)
    case index(JinjaExpression, JinjaExpression)
    case slice(JinjaExpression, start: JinjaExpression?, stop: JinjaExpression?, step: JinjaExpression?)
    case call(JinjaExpression, JinjaArguments)
    case filter(JinjaExpression, name: String, JinjaArguments)
    case test(JinjaExpression, name: String, JinjaArguments, negated: Bool)
    case not(JinjaExpression)
    case negate(JinjaExpression)
    case and(JinjaExpression, JinjaExpression)
    case or(JinjaExpression, JinjaExpression)
    /// `+ - * / // % ** ~ == != < > <= >= in` (and `not in` as `.not(in)`).
    case binary(String, JinjaExpression, JinjaExpression)
    case conditional(JinjaExpression, condition: JinjaExpression, otherwise: JinjaExpression?)
}

struct JinjaArguments: Sendable {
    var positional: [JinjaExpression] = []
    var keyword: [(name: String, value: JinjaExpression)] = []
}

indirect enum JinjaStatement: Sendable {
    case text(String)
    case output(JinjaExpression)
    case ifChain([(condition: JinjaExpression, body: [JinjaStatement])], otherwise: [JinjaStatement])
    case forLoop(targets: [String], iterable: JinjaExpression, filter: JinjaExpression?,
                 body: [JinjaStatement], otherwise: [JinjaStatement])
    case set(name: String, attribute: String?, JinjaExpression)
    case breakLoop
    case continueLoop
}
