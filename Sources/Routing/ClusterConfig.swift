import Foundation
import PDProtocol

/// `--cluster-config FILE`: the deployment's instances, the counterpart of FastDeploy's
/// register.yaml and Ascend's ranktable, as JSON:
///
///     {"prefill": [{"host": "10.0.0.1", "port": 8001, "engine_worker_queue_port": 8011,
///                   "pd_comm_port": 8021, "cache_queue_port": 8031, "device_ids": ["0"],
///                   "transfer_protocol": ["ipc", "tcp"], "model": "smollm2"}],
///      "decode": [...], "mixed": [...]}
///
/// Each entry takes WorkerRegistration's keys; the role comes from the list it is in, and
/// `model` may be left out.
public struct ClusterConfig: Sendable {
    public var workers: [WorkerRegistration]

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func load(path: String) throws -> ClusterConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "--cluster-config \(path): cannot read the file")
        }
        return try parse(data, name: path)
    }

    public static func parse(_ data: Data, name: String) throws -> ClusterConfig {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw Failure(description: "--cluster-config \(name): not a JSON object")
        }
        let known: Set<String> = ["prefill", "decode", "mixed"]
        if let unknown = root.keys.filter({ !known.contains($0) }).sorted().first {
            throw Failure(description: "--cluster-config \(name): unknown key '\(unknown)' (expected prefill, decode, mixed)")
        }
        var workers: [WorkerRegistration] = []
        for role in [SplitwiseRole.prefill, .decode, .mixed] {
            guard let value = root[role.rawValue] else { continue }
            guard let entries = value as? [[String: Any]] else {
                throw Failure(description: "--cluster-config \(name): '\(role.rawValue)' must be a list of instances")
            }
            for (index, entry) in entries.enumerated() {
                var filled = entry
                filled["role"] = role.rawValue
                if filled["model"] == nil { filled["model"] = "" }
                do {
                    let json = try JSONSerialization.data(withJSONObject: filled)
                    workers.append(try JSONDecoder().decode(WorkerRegistration.self, from: json))
                } catch {
                    throw Failure(description: "--cluster-config \(name): \(role.rawValue)[\(index)]: \(RegistrationDecoding.explain(error))")
                }
            }
        }
        return ClusterConfig(workers: workers)
    }
}

/// A static worker flag's value: `http://host:port`, optionally with the other ports as query
/// parameters (FastDeploy's key names), e.g.
/// `http://10.0.0.1:8001?engine_worker_queue_port=8011&pd_comm_port=8021&cache_queue_port=8031&transfer_protocol=ipc,tcp`.
public enum StaticWorker {
    public static func parse(_ text: String, role: SplitwiseRole) throws -> WorkerRegistration {
        guard let components = URLComponents(string: text), components.scheme == "http", let host = components.host,
              !host.isEmpty, let port = components.port else {
            throw ClusterConfig.Failure(description: "'\(text)' is not a worker URL such as http://127.0.0.1:8000")
        }
        var endpoint = PeerEndpoint(host: host, port: port)
        var protocols: [TransferProtocol] = []
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            func number() throws -> Int {
                guard let number = Int(value), (1...65535).contains(number) else {
                    throw ClusterConfig.Failure(description: "'\(text)': \(item.name) must be a port number")
                }
                return number
            }
            switch item.name {
            case "engine_worker_queue_port": endpoint.engineWorkerQueuePort = try number()
            case "pd_comm_port": endpoint.pdCommPort = try number()
            case "cache_queue_port": endpoint.cacheQueuePort = try number()
            case "transfer_protocol":
                protocols = try value.split(separator: ",").map {
                    guard let transfer = TransferProtocol(rawValue: String($0)) else {
                        throw ClusterConfig.Failure(description: "'\(text)': unknown transfer protocol '\($0)' (ipc, tcp, rdma)")
                    }
                    return transfer
                }
            default:
                throw ClusterConfig.Failure(description: "'\(text)': unknown parameter '\(item.name)'")
            }
        }
        return WorkerRegistration(role: role, endpoint: endpoint, model: "", transferProtocols: protocols)
    }
}

/// Decoding errors in one line a client can act on.
enum RegistrationDecoding {
    static func explain(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _):
            return "missing key '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "'\(context.codingPath.map(\.stringValue).joined(separator: "."))': \(context.debugDescription)"
        case DecodingError.dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "not valid JSON" : "'\(path)': \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}
