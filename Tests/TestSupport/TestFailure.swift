/// Why a test helper could not do what the test asked: thrown, so the test fails with this
/// message (a missing build product or model, a reference that answered the wrong number of
/// cases, a port that could not be bound).
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
