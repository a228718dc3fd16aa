import Foundation
import Testing

/// Pulls from a real registry (Debian's docker-registry on 127.0.0.1, TLS with a CA the test
/// makes, basic auth), the image pushed there by skopeo (issue 16).
@Suite("registries")
struct RegistryTests {
    static let name = "test/web:1"

    /// A daemon that trusts the registry's CA and has its credentials (or the given file).
    static func daemon(_ reg: RegistryInstance, authFile: String? = nil) throws -> DaemonInstance {
        try DaemonInstance(["--certs-dir", reg.certsDir, "--auth-file", try authFile ?? reg.authFile()])
    }

    static func blobs(_ d: DaemonInstance) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: d.dir + "/root/content/blobs/sha256")) ?? []
    }

    static func ingest(_ d: DaemonInstance) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: d.dir + "/root/content/ingest")) ?? []
    }

    @Test("push with skopeo, pull with sctr over TLS with basic auth, run it: the digests match")
    func pushThenPull() throws {
        let reg = try RegistryInstance()
        defer { reg.stop() }
        try reg.push("web-oci.tar", as: Self.name)
        let d = try Self.daemon(reg)
        defer { d.stop() }
        let pulled = try d.sctr(["pull", "\(reg.host)/\(Self.name)"])
        #expect(pulled.code == 0 && pulled.stdout.hasSuffix("\(reg.host)/\(Self.name)\n"), "\(pulled)")
        let digest = try reg.digest(Self.name)
        #expect(digest.hasPrefix("sha256:") && pulled.stdout.contains("Digest: \(digest)\n"), "\(pulled) vs \(digest)")
        let listed = try d.sctr(["images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout
        #expect(listed == "\(reg.host)/test/web:1\n", "\(listed)")
        let ran = try d.run(["--rm", "--network", "none"], "\(reg.host)/\(Self.name)", ["cat", "/etc/hostname"])
        #expect(ran.code == 0 && ran.stdout.count == 13, "\(ran)")
        #expect(Self.ingest(d).isEmpty)
        // By digest too, and a second pull has nothing to fetch.
        let byDigest = try d.sctr(["pull", "-q", "\(reg.host)/test/web@\(digest)"])
        #expect(byDigest.code == 0 && byDigest.stdout == "\(reg.host)/test/web@\(digest)\n", "\(byDigest)")
    }

    @Test("sctr push: skopeo and podman pull it with the same digest; a second repository gets the blobs by mount")
    func pushThenOthersPull() throws {
        let reg = try RegistryInstance()
        defer { reg.stop() }
        let d = try Self.daemon(reg)
        defer { d.stop() }
        let imported = try d.importImage("web-oci.tar")
        let local = imported.stdout.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        #expect(imported.code == 0 && local.hasPrefix("sha256:"), "\(imported)")
        #expect(try d.sctr(["tag", Self.name, "\(reg.host)/mine/web:2"]).code == 0)
        let pushed = try d.sctr(["push", "\(reg.host)/mine/web:2"])
        #expect(pushed.code == 0 && pushed.stdout.contains("digest: \(local)"), "\(pushed)")
        #expect(try reg.digest("mine/web:2") == local, "skopeo sees the digest sctr pushed")
        // podman pulls it too, and names the same digest.
        let pm = try PodmanInstance(RuntimeUnderTest.all[0])
        defer { pm.stop() }
        let pulled = try pm.podman(["pull", "--cert-dir", reg.certsDir + "/" + reg.host, "--creds", "\(RegistryInstance.user):\(RegistryInstance.password)", "\(reg.host)/mine/web:2"])
        #expect(pulled.code == 0, "\(pulled)")
        #expect(try pm.podman(["image", "inspect", "--format", "{{.Digest}}", "\(reg.host)/mine/web:2"]).stdout == local + "\n")
        // Another repository of the same registry: the blobs are mounted, not sent again.
        #expect(try d.sctr(["tag", Self.name, "\(reg.host)/other/web:3"]).code == 0)
        #expect(try d.sctr(["push", "\(reg.host)/other/web:3"]).code == 0)
        let log = (try? String(contentsOfFile: reg.dir + "/log", encoding: .utf8)) ?? ""
        let mounts = log.split(separator: "\n").filter { $0.contains("/v2/other/web/blobs/uploads/?mount=") && $0.contains("http.response.status=201") }
        #expect(mounts.count >= 2, "config and layers mounted: \(mounts.count)")
        #expect(try reg.digest("other/web:3") == local)

        // A 12 MiB layer goes up in 8 MiB chunks; another daemon pulls it back and runs it.
        let big = try d.importImage("big-oci.tar")
        let bigDigest = big.stdout.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        #expect(try d.sctr(["tag", "test/big:1", "\(reg.host)/mine/big:1"]).code == 0)
        #expect(try d.sctr(["push", "\(reg.host)/mine/big:1"]).code == 0)
        let patches = log.isEmpty ? [] : ((try? String(contentsOfFile: reg.dir + "/log", encoding: .utf8)) ?? "").split(separator: "\n")
            .filter { $0.contains("http.request.method=PATCH") && $0.contains("/v2/mine/big/blobs/uploads/") }
        #expect(patches.count >= 2, "chunked: \(patches.count) PATCHes")
        #expect(try reg.digest("mine/big:1") == bigDigest)
        let other = try Self.daemon(reg)
        defer { other.stop() }
        #expect(try other.sctr(["pull", "-q", "\(reg.host)/mine/big:1"]).code == 0)
        let ran = try other.run(["--rm", "--network", "none"], "\(reg.host)/mine/big:1", ["sh", "-c", "wc -c < /noise.bin"])
        #expect(ran.stdout.trimmingCharacters(in: .whitespaces) == "\(12 << 20)\n", "\(ran)")
    }

    @Test("commit: the new image has the container's changes, deletions and a replaced directory included, its command and the --change instructions")
    func commitContainer() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("web-oci.tar").code == 0)
        let script = "echo new > /added && rm /data/a && rm -r /opq && mkdir /opq && echo only > /opq/z && echo changed > /data/b && touch /ready && sleep 1000"
        #expect(try d.run(["-d", "--name", "box", "--network", "none"], Self.name, ["sh", "-c", script]).code == 0)
        try eventually("the container made its changes") { try d.sctr(["exec", "box", "ls", "/ready"]).code == 0 }
        let committed = try d.sctr(["commit", "-m", "changes", "-a", "tester", "-c", "ENV COMMITTED=yes", "-c", "WORKDIR /data", "box", "test/committed:1"])
        #expect(committed.code == 0 && committed.stdout.hasPrefix("sha256:"), "\(committed)")
        #expect(try d.sctr(["ps", "--format", "{{.Status}}"]).stdout == "running\n", "the container runs on after its pause")
        let seen = try d.run(["--rm", "--network", "none"], "test/committed:1",
                             ["sh", "-c", "cat /added /data/b; ls /data; ls /opq; echo $COMMITTED; pwd; ls /data/a 2>&1 || true"])
        #expect(seen.stdout == "new\nchanged\nb\nz\nyes\n/data\nls: /data/a: No such file or directory\n", "\(seen)")
        // Its default command is the container's.
        let inspect = try d.sctr(["inspect", "test/committed:1"]).stdout
        #expect(inspect.contains("sleep 1000") && inspect.contains("changes") && inspect.contains("tester"), "\(inspect.prefix(800))")
        let history = try d.sctr(["history", "test/committed:1"]).stdout.split(separator: "\n")
        #expect(history.count >= 2 && history[1].contains("sctr commit") && history[1].hasSuffix("changes"), "\(history)")
    }

    @Test("save then load on another root keeps the image id (oci-archive: the manifest; docker-archive: the config); docker, podman and skopeo read the files")
    func saveAndLoad() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("web-oci.tar").code == 0)
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let oci = d.dir + "/images.oci.tar", docker = d.dir + "/images.docker.tar"
        #expect(try d.sctr(["save", "--format", "oci-archive", "-o", oci, Self.name, "test/layered:oci"]).code == 0)
        #expect(try d.sctr(["save", "-o", docker, Self.name, "test/layered:oci"]).code == 0)
        func ids(_ daemon: DaemonInstance) throws -> String { try daemon.sctr(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]).stdout }
        func config(_ daemon: DaemonInstance, _ name: String) throws -> String {
            (((try daemon.inspect(name))["image"] as? [String: Any])?["configDigest"] as? String) ?? ""
        }
        let other = try DaemonInstance()
        defer { other.stop() }
        let loaded = try other.sctr(["load", "-i", oci])
        #expect(loaded.code == 0 && loaded.stdout.contains("Loaded image: docker.io/test/web:1"), "\(loaded)")
        #expect(try ids(other) == (try ids(d)), "the same manifests")
        let third = try DaemonInstance()
        defer { third.stop() }
        #expect(try third.sctr(["load", "-i", docker]).code == 0)
        for name in [Self.name, "test/layered:oci"] { #expect(try config(third, name) == (try config(d, name)) && !(try config(d, name)).isEmpty) }
        let ran = try third.run(["--rm", "--network", "none"], "test/layered:oci", ["ls", "/"])
        #expect(ran.code == 0, "\(ran)")
        // docker import: a container's exported filesystem as a new one-layer image.
        #expect(try d.run(["-d", "--name", "src", "--network", "none"], Self.name, ["sh", "-c", "echo exported > /mark; sleep 1000"]).code == 0)
        try eventually("the container wrote its mark") { try d.sctr(["exec", "src", "cat", "/mark"]).stdout == "exported\n" }
        #expect(try d.sctr(["export", "-o", d.dir + "/fs.tar", "src"]).code == 0)
        #expect(try third.sctr(["import", d.dir + "/fs.tar", "test/flat:1"]).code == 0)
        let flat = try third.run(["--rm", "--network", "none"], "test/flat:1", ["cat", "/mark"])
        #expect(flat.stdout == "exported\n", "\(flat)")
        #expect(try third.sctr(["history", "test/flat:1"]).stdout.contains("sctr import"))
        // The peers read them.
        let pm = try PodmanInstance(RuntimeUnderTest.all[0])
        defer { pm.stop() }
        // podman 4.3 takes one image per oci-archive ("more than one image in oci, choose an image").
        let single = d.dir + "/web.oci.tar"
        #expect(try d.sctr(["save", "--format", "oci-archive", "-o", single, Self.name]).code == 0)
        for file in [docker, single] {
            let r = try pm.podman(["load", "-i", file])
            #expect(r.code == 0, "podman load \(file): \(r)")
        }
        #expect(try execute("/usr/bin/skopeo", ["inspect", "docker-archive:" + docker + ":docker.io/test/web:1"]).code == 0)
        let engine = try DockerInstance(RuntimeUnderTest.all[1])
        defer { engine.stop() }
        let dl = try engine.docker(["load", "-i", docker])
        #expect(dl.code == 0 && dl.stdout.contains("test/web:1"), "docker load: \(dl)")
        let dockerID = try engine.docker(["image", "inspect", "--format", "{{.Id}}", "test/web:1"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(dockerID == (try config(d, Self.name)), "docker's image id is the config digest")
    }

    @Test("bearer tokens: the registry's challenge names the token server; the token is scoped to the repository")
    func bearerTokens() throws {
        let reg = try RegistryInstance(tokenAuth: true)
        defer { reg.stop() }
        try reg.push("web-oci.tar", as: Self.name)
        let d = try Self.daemon(reg)
        defer { d.stop() }
        let pulled = try d.sctr(["pull", "\(reg.host)/\(Self.name)"])
        let digest = try reg.digest(Self.name)
        #expect(pulled.code == 0 && pulled.stdout.contains("Digest: \(digest)\n"), "\(pulled)")
        #expect(reg.tokenRequests.contains("/token repository:test/web:pull user"), "\(reg.tokenRequests)")
        let wrong = try Self.daemon(reg, authFile: try reg.authFile(password: "wrong"))
        defer { wrong.stop() }
        let refused = try wrong.sctr(["pull", "\(reg.host)/\(Self.name)"])
        #expect(refused.code == 1 && refused.stderr.contains("token server refused"), "\(refused)")
    }

    @Test("login checks the credentials with the registry and keeps them as docker does (0600 config.json); logout drops them")
    func loginLogout() throws {
        for tokenAuth in [false, true] {
            let reg = try RegistryInstance(tokenAuth: tokenAuth)
            defer { reg.stop() }
            try reg.push("web-oci.tar", as: Self.name)
            let file = reg.dir + "/docker/config.json"
            let d = try Self.daemon(reg, authFile: file)
            defer { d.stop() }
            let bad = try d.sctr(["login", "-u", RegistryInstance.user, "-p", "wrong", reg.host])
            #expect(bad.code == 1 && bad.stderr.contains("unauthorized") && !FileManager.default.fileExists(atPath: file), "\(bad)")
            let good = try d.sctr(["login", "-u", RegistryInstance.user, "-p", RegistryInstance.password, reg.host])
            #expect(good.code == 0 && good.stdout == "Login Succeeded\n", "\(good)")
            let mode = (try? FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int) ?? 0
            let saved = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file)))) as? [String: Any]
            let auth = ((saved?["auths"] as? [String: Any])?[reg.host] as? [String: Any])?["auth"] as? String
            #expect(mode == 0o600 && auth == Data("\(RegistryInstance.user):\(RegistryInstance.password)".utf8).base64EncodedString(), "\(mode) \(String(describing: saved))")
            #expect(try d.sctr(["pull", "-q", "\(reg.host)/\(Self.name)"]).code == 0)
            #expect(try d.sctr(["logout", reg.host]).code == 0)
            let after = try d.sctr(["pull", "\(reg.host)/test/web@\(try reg.digest(Self.name))"])
            #expect(after.code == 1, "logged out: \(after)")
        }
    }

    @Test("wrong or missing credentials, an unknown tag, another platform, an untrusted CA: clear errors, nothing stored")
    func clearErrors() throws {
        let reg = try RegistryInstance()
        defer { reg.stop() }
        try reg.push("web-oci.tar", as: Self.name)
        let wrong = try Self.daemon(reg, authFile: try reg.authFile(password: "wrong"))
        defer { wrong.stop() }
        let refused = try wrong.sctr(["pull", "\(reg.host)/\(Self.name)"])
        #expect(refused.code == 1 && refused.stderr.contains("unauthorized"), "\(refused)")
        let none = try Self.daemon(reg, authFile: reg.dir + "/no-such-file.json")
        defer { none.stop() }
        let anonymous = try none.sctr(["pull", "\(reg.host)/\(Self.name)"])
        #expect(anonymous.code == 1 && anonymous.stderr.contains("authentication required"), "\(anonymous)")

        let d = try Self.daemon(reg)
        defer { d.stop() }
        let unknown = try d.sctr(["pull", "\(reg.host)/test/web:nosuch"])
        #expect(unknown.code == 1 && unknown.stderr.contains("manifest unknown"), "\(unknown)")
        let arm = try d.sctr(["pull", "--platform", "linux/arm64", "\(reg.host)/\(Self.name)"])
        #expect(arm.code == 1 && arm.stderr.contains("does not match the platform linux/arm64"), "\(arm)")
        let badName = try d.sctr(["pull", "\(reg.host)/Test/Upper"])
        #expect(badName.code == 1 && badName.stderr.contains("reference"), "\(badName)")
        for daemon in [wrong, none, d] {
            #expect(try daemon.sctr(["images", "-q"]).stdout.isEmpty)
            #expect(Self.ingest(daemon).isEmpty, "no partial blob: \(Self.ingest(daemon))")
        }

        let untrusting = try DaemonInstance(["--certs-dir", reg.dir + "/nothing", "--auth-file", try reg.authFile()])
        defer { untrusting.stop() }
        let tls = try untrusting.sctr(["pull", "\(reg.host)/\(Self.name)"])
        #expect(tls.code == 1 && tls.stderr.contains("certificate is not trusted"), "\(tls)")
    }

    @Test("a blob with a flipped byte is refused and nothing of it is stored")
    func flippedByte() throws {
        let reg = try RegistryInstance()
        defer { reg.stop() }
        try reg.push("web-oci.tar", as: Self.name)
        let proxy = try RegistryProxy(reg, mode: "flip")
        defer { proxy.stop() }
        let d = try Self.daemon(reg, authFile: try reg.authFile(for: proxy.host))
        defer { d.stop() }
        let r = try d.sctr(["pull", "\(proxy.host)/\(Self.name)"])
        #expect(r.code == 1 && r.stderr.contains("digest mismatch"), "\(r)")
        #expect(Self.blobs(d).isEmpty && Self.ingest(d).isEmpty, "\(Self.blobs(d)) \(Self.ingest(d))")
        #expect(try d.sctr(["images", "-q"]).stdout.isEmpty)
    }

    @Test("a manifest over 4 MiB is refused before it is read whole")
    func manifestTooLarge() throws {
        let reg = try RegistryInstance()
        defer { reg.stop() }
        let proxy = try RegistryProxy(reg, mode: "bloat")
        defer { proxy.stop() }
        let d = try Self.daemon(reg, authFile: try reg.authFile(for: proxy.host))
        defer { d.stop() }
        let r = try d.sctr(["pull", "\(proxy.host)/\(Self.name)"])
        #expect(r.code == 1 && r.stderr.contains("larger than the 4194304 allowed"), "\(r)")
        #expect(Self.blobs(d).isEmpty)
    }

    @Test("a pull cut off mid-layer by a daemon crash resumes with Range; no temp file stays")
    func resumesAfterCrash() throws {
        let reg = try RegistryInstance()
        defer { reg.stop() }
        try reg.push("web-oci.tar", as: Self.name)
        let proxy = try RegistryProxy(reg, mode: "stall")
        defer { proxy.stop() }
        let d = try Self.daemon(reg, authFile: try reg.authFile(for: proxy.host))
        defer { d.stop() }
        let out = d.dir + "/pull.out"
        let client = try spawn(DaemonInstance.binDir + "/sctr", ["pull", "\(proxy.host)/\(Self.name)"], env: ["SCONTAINERD_SOCKET": d.socketPath],
                               stdout: out, stderr: out)
        try eventually("half a layer has arrived") {
            Self.ingest(d).contains { name in
                var st = stat()
                return name.hasSuffix(".partial") && stat(d.dir + "/root/content/ingest/" + name, &st) == 0 && st.st_size > 4096
            }
        }
        d.crash()
        #expect(try exitCode(of: client) != 0)
        try d.start()
        let again = try d.sctr(["pull", "\(proxy.host)/\(Self.name)"])
        #expect(again.code == 0, "\(again)")
        #expect(proxy.requests.contains { $0.contains("/blobs/") && $0.contains("bytes=") && $0.hasSuffix(" 206") }, "\(proxy.requests)")
        #expect(Self.ingest(d).isEmpty, "\(Self.ingest(d))")
        let ran = try d.run(["--rm", "--network", "none"], "\(proxy.host)/\(Self.name)", ["cat", "/etc/hostname"])
        #expect(ran.code == 0, "\(ran)")
    }
}
