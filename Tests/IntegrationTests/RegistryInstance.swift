import Foundation

/// Debian's docker-registry on 127.0.0.1 for one test: TLS with a CA the test generates,
/// htpasswd basic auth (tester/secret) or bearer tokens from spec-fixtures/token-server.py,
/// storage in the test's directory.
final class RegistryInstance: @unchecked Sendable {
    let dir: String
    let port: UInt16
    private var pid: pid_t = 0
    private var tokenServer: pid_t = 0
    /// With token auth: what the token server was asked (`PATH SCOPE user|anonymous`).
    var tokenRequests: [String] { ((try? String(contentsOfFile: dir + "/token.log", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
    var host: String { "127.0.0.1:\(port)" }
    /// certs.d layout for the daemon: HOST/ca.crt.
    var certsDir: String { dir + "/certs" }
    static let user = "tester", password = "secret"

    init(tokenAuth: Bool = false) throws {
        dir = NSTemporaryDirectory() + "reg-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        port = try freeLoopbackPort()
        let script = """
            set -e; cd \(dir)
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj '/CN=srunc test CA' 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout reg.key -out reg.csr -subj '/CN=127.0.0.1' 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext
            openssl x509 -req -in reg.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out reg.crt -days 2 -extfile ext 2>/dev/null
            htpasswd -Bbn \(Self.user) \(Self.password) > htpasswd
            mkdir -p 'certs/127.0.0.1:\(port)' && cp ca.crt 'certs/127.0.0.1:\(port)/'
            openssl req -x509 -newkey rsa:2048 -nodes -keyout token.key -out token.crt -days 2 -subj '/CN=srunc test token issuer' 2>/dev/null
            """
        let made = try execute("/bin/sh", ["-c", script])
        guard made.code == 0 else { throw ClientError("registry certificates: \(made.stderr)") }
        var auth = "auth: {htpasswd: {realm: test, path: \(dir)/htpasswd}}"
        if tokenAuth {
            let portFile = dir + "/token.port"
            tokenServer = try spawn("/usr/bin/python3", [RuntimeUnderTest.packageRoot + "/spec-fixtures/token-server.py", portFile, dir + "/token.key",
                                                         dir + "/token.crt", "srunc-test-issuer", Self.user, Self.password, dir + "/token.log"],
                                    stdout: dir + "/token.out", stderr: dir + "/token.out")
            var tokenPort = ""
            try eventually("the token server listens") { tokenPort = (try? String(contentsOfFile: portFile, encoding: .utf8)) ?? ""; return !tokenPort.isEmpty }
            auth = "auth: {token: {realm: \"http://127.0.0.1:\(tokenPort)/token\", service: srunc-test-registry, issuer: srunc-test-issuer, rootcertbundle: \(dir)/token.crt}}"
        }
        let config = """
            version: 0.1
            log: {level: info}
            storage: {filesystem: {rootdirectory: \(dir)/data}}
            http: {addr: "127.0.0.1:\(port)", tls: {certificate: \(dir)/reg.crt, key: \(dir)/reg.key}}
            \(auth)
            """
        try config.write(toFile: dir + "/config.yml", atomically: true, encoding: .utf8)
        pid = try spawn("/usr/bin/docker-registry", ["serve", dir + "/config.yml"], stdout: dir + "/log", stderr: dir + "/log")
        try eventually("docker-registry listens on \(port)") { RegistryInstance.accepts(port) }
    }

    /// Whether something accepts TCP connections on 127.0.0.1:port.
    static func accepts(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
    }

    /// skopeo copy of an archive in the test images to NAME here.
    func push(_ archive: String, as name: String) throws {
        let r = try execute("/usr/bin/skopeo", ["copy", "--dest-cert-dir", certsDir + "/" + host, "--dest-creds", "\(Self.user):\(Self.password)",
                                                 "oci-archive:" + TestImages.dir + "/" + archive, "docker://\(host)/\(name)"])
        guard r.code == 0 else { throw ClientError("skopeo copy: \(r.stderr)") }
    }

    /// The manifest digest skopeo sees for NAME.
    func digest(_ name: String) throws -> String {
        let r = try execute("/usr/bin/skopeo", ["inspect", "--cert-dir", certsDir + "/" + host, "--creds", "\(Self.user):\(Self.password)",
                                                 "--format", "{{.Digest}}", "docker://\(host)/\(name)"])
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A docker config.json with these credentials (or wrong ones) for `host`.
    func authFile(for host: String? = nil, password: String = RegistryInstance.password) throws -> String {
        let path = dir + "/auth-\(UUID().uuidString.prefix(6)).json"
        let auth = Data("\(Self.user):\(password)".utf8).base64EncodedString()
        try #"{"auths":{"\#(host ?? self.host)":{"auth":"\#(auth)"}}}"#.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func stop() {
        for p in [pid, tokenServer] where p > 0 { kill(p, SIGTERM); waitForExit(p) }
        pid = 0; tokenServer = 0
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// spec-fixtures/registry-proxy.py in front of a registry: plain HTTP on loopback, misbehaving
/// on cue (`stall` the first response of each blob halfway, or `flip` a byte of every blob).
final class RegistryProxy: @unchecked Sendable {
    let port: UInt16
    let log: String
    private let pid: pid_t

    init(_ registry: RegistryInstance, mode: String) throws {
        let portFile = registry.dir + "/proxy-\(mode).port"
        log = registry.dir + "/proxy-\(mode).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        pid = try spawn("/usr/bin/python3", [RuntimeUnderTest.packageRoot + "/spec-fixtures/registry-proxy.py", portFile, registry.host,
                                             registry.dir + "/ca.crt", mode, log], stdout: registry.dir + "/proxy.out", stderr: registry.dir + "/proxy.out")
        var found: UInt16 = 0
        try eventually("the proxy listens") {
            found = UInt16((try? String(contentsOfFile: portFile, encoding: .utf8)) ?? "") ?? 0
            return found != 0
        }
        port = found
    }

    var host: String { "127.0.0.1:\(port)" }
    var requests: [String] { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }

    func stop() { kill(pid, SIGTERM); waitForExit(pid) }
}
