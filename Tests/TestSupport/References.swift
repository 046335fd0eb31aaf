/// Pairs each case with an independent reference's answer for it, after checking that the
/// reference answered exactly as many cases as it was asked: an empty or short reply fails
/// the test instead of leaving nothing to compare.
public func paired<Cases: Collection, Answers: Collection>(
    _ cases: Cases, _ answers: Answers, reference: String
) throws -> Zip2Sequence<Cases, Answers> {
    guard cases.count == answers.count else {
        throw TestFailure("\(reference) answered \(answers.count) cases for the \(cases.count) asked")
    }
    return zip(cases, answers)
}
