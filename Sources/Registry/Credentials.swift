import Foundation

/// Registry credentials in docker's `config.json` (`{"auths": {"HOST": {"auth":
/// base64("user:password")}}}`), so an existing `docker login` works and ours works for docker.
public struct Credentials: Sendable, Equatable {
    public var username: String
    public var password: String
    public init(username: String, password: String) { self.username = username; self.password = password }

    /// docker's key for Docker Hub.
    static let dockerHubKey = "https://index.docker.io/v1/"

    static func key(for host: String) -> String { host == "docker.io" || host == "registry-1.docker.io" ? dockerHubKey : host }

    /// The credentials stored for `host` in the file, if any.
    public static func lookup(host: String, file: String) -> Credentials? {
        guard let data = FileManager.default.contents(atPath: file),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let auths = root["auths"] as? [String: Any] else { return nil }
        let candidates = [key(for: host), host, "https://" + host, "http://" + host]
        for k in candidates {
            guard let entry = auths[k] as? [String: Any], let auth = entry["auth"] as? String,
                  let decoded = Data(base64Encoded: auth).map({ String(decoding: $0, as: UTF8.self) }),
                  let colon = decoded.firstIndex(of: ":") else { continue }
            return Credentials(username: String(decoded[..<colon]), password: String(decoded[decoded.index(after: colon)...]))
        }
        return nil
    }

    /// Stores (or, with nil, removes) `host`'s entry, keeping the rest of the file; 0600.
    public static func store(_ credentials: Credentials?, host: String, file: String) throws {
        var root: [String: Any] = [:]
        if let data = FileManager.default.contents(atPath: file), let existing = try JSONSerialization.jsonObject(with: data) as? [String: Any] {
            root = existing
        }
        var auths = root["auths"] as? [String: Any] ?? [:]
        if let c = credentials {
            auths[key(for: host)] = ["auth": Data("\(c.username):\(c.password)".utf8).base64EncodedString()]
        } else {
            auths.removeValue(forKey: key(for: host))
        }
        root["auths"] = auths
        let data = try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let temp = file + ".tmp"
        guard FileManager.default.createFile(atPath: temp, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw RegistryError("cannot write \(file)")
        }
        guard rename(temp, file) == 0 else { throw RegistryError("cannot write \(file): \(String(cString: strerror(errno)))") }
    }
}

/// A registry operation that failed, in words for the user.
public struct RegistryError: Error, CustomStringConvertible, Sendable {
    public let description: String
    /// The registry refused our credentials (or asked for some we do not have).
    public var unauthorized = false
    /// The name, tag, digest or platform does not exist there.
    public var notFound = false
    public init(_ description: String, unauthorized: Bool = false, notFound: Bool = false) {
        self.description = description; self.unauthorized = unauthorized; self.notFound = notFound
    }
}
