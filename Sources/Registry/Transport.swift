import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// Where registries are and how to trust them.
public struct RegistryOptions: Sendable {
    /// Hosts (`host[:port]`) that may be reached over plain HTTP; loopback ones always may, as
    /// docker treats them.
    public var insecure: [String] = []
    /// Per-registry CAs: `DIR/HOST[:PORT]/ca.crt`, as docker's certs.d.
    public var certsDir = "/etc/docker/certs.d"
    /// docker's config.json with `auths`.
    public var authFile = NSHomeDirectory() + "/.docker/config.json"
    /// Mirrors tried before docker.io for its images (`host[:port]`).
    public var mirrors: [String] = []
    /// The most bytes a manifest or index may have.
    public var maxManifestBytes = 4 << 20
    /// Blobs fetched at once.
    public var concurrency = 3
    public init() {}
}

/// HTTP to one registry host: https (with its certs.d CA) or, where allowed, http; the auth
/// the registry asks for (Basic, or a Bearer token from the realm its `WWW-Authenticate`
/// challenge names, scoped to the repository), retried once with it.
final class Transport: @unchecked Sendable {
    let host: String
    let options: RegistryOptions
    private let http: HTTPClient
    private let tls: TLSConfiguration
    private var scheme: String
    private var resolved = false
    private var authorization: [String: String] = [:]  // per scope
    private let lock = NSLock()
    /// Credentials to use instead of the stored ones (a login checking new ones).
    private let given: Credentials?

    init(host: String, options: RegistryOptions, http: HTTPClient, credentials: Credentials? = nil) throws {
        self.host = host
        given = credentials
        self.options = options
        self.http = http
        var tls = TLSConfiguration.makeClientConfiguration()
        let ca = options.certsDir + "/" + host + "/ca.crt"
        if FileManager.default.fileExists(atPath: ca) {
            do { tls.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(ca))] } catch {
                throw RegistryError("\(ca): not a PEM certificate: \(error)")
            }
        }
        self.tls = tls
        scheme = "https"
    }

    /// A path on this registry as a URL, with the scheme that works.
    func url(_ path: String) -> String { "\(lock.withLock { scheme })://\(host)\(path)" }

    /// Plain HTTP is allowed for loopback hosts and the configured insecure ones.
    var mayUseHTTP: Bool {
        let name = host.split(separator: ":").first.map(String.init) ?? host
        return options.insecure.contains(host) || options.insecure.contains(name) || name == "localhost" || name.hasPrefix("127.") || name == "[::1]"
    }

    /// A request with the scope's credentials; on a 401, the challenge is answered and the
    /// request sent again. `body` makes the request (it may be sent twice).
    func send(_ method: HTTPMethod, _ path: String, scope: String, headers: [(String, String)] = [],
              body: (() -> HTTPClientRequest.Body)? = nil, timeout: TimeAmount = .seconds(60)) async throws -> HTTPClientResponse {
        var response = try await attempt(method, path, scope: scope, headers: headers, body: body, timeout: timeout)
        if response.status == .unauthorized {
            let challenge = response.headers.first(name: "WWW-Authenticate") ?? ""
            _ = try? await response.body.collect(upTo: 1 << 20)
            try await authenticate(challenge, scope: scope)
            response = try await attempt(method, path, scope: scope, headers: headers, body: body, timeout: timeout)
            if response.status == .unauthorized {
                throw RegistryError("\(host): unauthorized: the registry refused the credentials for \(scope)", unauthorized: true)
            }
        }
        return response
    }

    private func attempt(_ method: HTTPMethod, _ path: String, scope: String, headers: [(String, String)],
                         body: (() -> HTTPClientRequest.Body)?, timeout: TimeAmount) async throws -> HTTPClientResponse {
        func request(_ scheme: String) -> HTTPClientRequest {
            var r = HTTPClientRequest(url: path.hasPrefix("http") ? path : "\(scheme)://\(host)\(path)")
            r.method = method
            r.tlsConfiguration = tls
            for (k, v) in headers { r.headers.add(name: k, value: v) }
            if let auth = lock.withLock({ authorization[scope] }) { r.headers.replaceOrAdd(name: "Authorization", value: auth) }
            r.body = body?()
            return r
        }
        let current = try await resolvedScheme()
        do {
            return try await http.execute(request(current), timeout: timeout)
        } catch {
            throw RegistryError("\(host): \(Transport.words(error))")
        }
    }

    /// https, unless the host may use plain HTTP and answers in it. Asked once per transport,
    /// with a credential-free `GET /v2/` over plain HTTP: a TLS server answers that at once
    /// (400, "HTTP request to an HTTPS server"), while a TLS handshake with a plain server
    /// would wait for the handshake timeout.
    private func resolvedScheme() async throws -> String {
        if let known = lock.withLock({ resolved ? scheme : nil }) { return known }
        var chosen = "https"
        if mayUseHTTP {
            var probe = HTTPClientRequest(url: "http://\(host)/v2/")
            probe.method = .GET
            if let response = try? await http.execute(probe, timeout: .seconds(10)) {
                let body = (try? await response.body.collect(upTo: 1 << 16)).map { String(buffer: $0) } ?? ""
                if !(response.status == .badRequest && body.contains("HTTPS")) { chosen = "http" }
            }
        }
        lock.withLock { scheme = chosen; resolved = true }
        return chosen
    }

    /// Answers a `WWW-Authenticate` challenge: Basic with the stored credentials, or a Bearer
    /// token fetched from the realm (with them, if any).
    private func authenticate(_ challenge: String, scope: String) async throws {
        let credentials = given ?? Credentials.lookup(host: host, file: options.authFile)
        let basic = credentials.map { "Basic " + Data("\($0.username):\($0.password)".utf8).base64EncodedString() }
        let lower = challenge.lowercased()
        if lower.hasPrefix("basic") {
            guard let basic else { throw RegistryError("\(host): unauthorized: authentication required (no credentials stored; log in first)", unauthorized: true) }
            lock.withLock { authorization[scope] = basic }
            return
        }
        guard lower.hasPrefix("bearer") else { throw RegistryError("\(host): unauthorized: unsupported challenge \(challenge.prefix(80))", unauthorized: true) }
        let params = Transport.challengeParameters(String(challenge.dropFirst(6)))
        guard let realm = params["realm"], var components = URLComponents(string: realm) else {
            throw RegistryError("\(host): a Bearer challenge without a realm", unauthorized: true)
        }
        var query = components.queryItems ?? []
        if let service = params["service"] { query.append(URLQueryItem(name: "service", value: service)) }
        if let wanted = params["scope"] ?? (scope.isEmpty ? nil : scope) { query.append(URLQueryItem(name: "scope", value: wanted)) }
        components.queryItems = query
        var request = HTTPClientRequest(url: components.string ?? realm)
        request.tlsConfiguration = tls
        if let basic { request.headers.add(name: "Authorization", value: basic) }
        let response: HTTPClientResponse
        do { response = try await http.execute(request, timeout: .seconds(30)) } catch {
            throw RegistryError("\(host): token from \(realm): \(Transport.words(error))")
        }
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            throw RegistryError("\(host): unauthorized: the token server refused (\(response.status.code))", unauthorized: true)
        }
        let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
        guard let token = json?["token"] as? String ?? json?["access_token"] as? String, !token.isEmpty else {
            throw RegistryError("\(host): the token server sent no token", unauthorized: true)
        }
        lock.withLock { authorization[scope] = "Bearer " + token }
    }

    /// `realm="…",service="…",scope="…"` as a dictionary.
    static func challengeParameters(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        while let eq = rest.firstIndex(of: "=") {
            let key = rest[..<eq].trimmingCharacters(in: CharacterSet(charactersIn: " ,")).lowercased()
            rest = rest[rest.index(after: eq)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                let end = rest.firstIndex(of: "\"") ?? rest.endIndex
                value = String(rest[..<end])
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : ""
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = String(rest[..<end])
                rest = rest[end...]
            }
            result[key] = value
        }
        return result
    }

    /// An HTTP client error as a sentence.
    static func words(_ error: Error) -> String {
        let text = String(describing: error)
        if text.contains("CERTIFICATE_VERIFY_FAILED") { return "TLS: the registry's certificate is not trusted (its CA goes in certs.d/HOST/ca.crt): \(text)" }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError { return "TLS: \(text)" }
        return text
    }
}
