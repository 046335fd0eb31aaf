/// Why a fleet cannot be planned. The description is the exact message the user sees; the
/// supervisor exits with status 78 (EX_CONFIG) on it, before anything is started.
public struct PlanningError: Error, Equatable, CustomStringConvertible, Sendable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
