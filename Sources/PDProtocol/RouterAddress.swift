import Foundation

/// How a router is named on a worker's or a supervisor's command line (`--router`):
/// `HOST:PORT` or an `http://` (or `https://`) URL; both become one base URL.
public enum RouterAddress {
    /// `http://host:port` without a trailing slash; nil when `text` is neither form.
    public static func baseURL(_ text: String) -> String? {
        let hasScheme = text.contains("://")
        let given = hasScheme ? text : "http://" + text
        guard let url = URL(string: given), let scheme = url.scheme, ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty, hasScheme || url.port != nil, url.path.isEmpty || url.path == "/",
              url.query == nil else { return nil }
        return given.hasSuffix("/") ? String(given.dropLast()) : given
    }

    /// The error message for a `--router` value that `baseURL` refuses.
    public static func invalid(_ text: String) -> String {
        "--router '\(text)' is not HOST:PORT or an http:// URL such as http://127.0.0.1:8109"
    }
}
