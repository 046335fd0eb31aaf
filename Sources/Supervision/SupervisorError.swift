/// Errors of the running supervisor (planning errors come from FleetPlanning).
public enum SupervisorError: Error, Equatable, CustomStringConvertible {
    case io(String)
    case spawn(rank: Int, message: String)

    public var description: String {
        switch self {
        case .io(let message): message
        case .spawn(let rank, let message): "rank \(rank): \(message)"
        }
    }
}
