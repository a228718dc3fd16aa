import Foundation
import Testing

/// Docker Engine (Debian's docker.io, 20.10) for one test, privately: its own data and exec
/// roots, socket, pidfile, its managed containerd, a bridge and address pool of its own, the
/// host's firewall untouched (--iptables=false), containers under a cgroup parent of their own,
/// and the runtime under test as its default. `stop()` removes everything it made.
final class DockerInstance: @unchecked Sendable {
    static let image = "srunc/busybox:test"
    let name: String
    let dir: String
    let runtime: RuntimeUnderTest
    let bridge: String
    private var daemon: pid_t = 0

    init(_ runtime: RuntimeUnderTest) throws {
        self.runtime = runtime
        name = uniqueTestName("dk")
        dir = NSTemporaryDirectory() + name
        bridge = "srd" + String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(10)).lowercased()
        try FileManager.default.createDirectory(atPath: dir + "/context", withIntermediateDirectories: true)
        let net = try DockerInstance.freeSubnet()
        for args in [["link", "add", "name", bridge, "type", "bridge"], ["addr", "add", "10.\(net).0.1/24", "dev", bridge], ["link", "set", bridge, "up"]] {
            let r = try execute("/sbin/ip", args)
            guard r.code == 0 else { stop(); throw ClientError("ip \(args.joined(separator: " ")): \(r.stderr)") }
        }
        // runc is docker's built-in runtime name; srunc is added beside it.
        let runtimeFlags = runtime.name == "runc" ? ["--default-runtime", "runc"]
            : ["--add-runtime", "\(runtime.name)=\(runtime.binary)", "--default-runtime", runtime.name]
        daemon = try spawn("/usr/sbin/dockerd", [
            "--data-root", dir + "/data", "--exec-root", dir + "/exec", "-H", "unix://" + socket, "--pidfile", dir + "/docker.pid",
            "-b", bridge, "--iptables=false", "--ip-masq=false", "--default-address-pool", "base=10.\(net).128.0/17,size=24",
            "--cgroup-parent", "/" + name, "--log-level", "warn",
        ] + runtimeFlags, stdout: dir + "/dockerd.log", stderr: dir + "/dockerd.log")
        do {
            try eventually("dockerd answers on \(socket)") { try docker(["version"]).code == 0 }
            try importImage()
        } catch { stop(); throw error }
    }

    var socket: String { dir + "/docker.sock" }

    /// A 10.X.0.0/16 no interface on the host uses yet (the bridge takes X.0, networks X.128+).
    static func freeSubnet() throws -> Int {
        let used = try execute("/sbin/ip", ["-4", "-o", "addr"]).stdout + (try execute("/sbin/ip", ["-4", "route"]).stdout)
        let candidates = (100...250).shuffled().filter { !used.contains("10.\($0).") }
        guard let x = candidates.first else { throw ClientError("no free 10.x.0.0/16 for a docker bridge") }
        return x
    }

    /// /usr/bin/docker (Debian's 20.10 client: a newer one may come first on PATH) on this daemon.
    @discardableResult
    func docker(_ args: [String], env: [String: String] = [:]) throws -> Outcome {
        try executeClient("/usr/bin/docker", ["-H", "unix://" + socket] + args, cwd: dir, env: env.merging(["DOCKER_BUILDKIT": "0"]) { $1 })
    }

    /// The busybox fixture rootfs as an image (`docker import`: 20.10 cannot load OCI archives).
    private func importImage() throws {
        let tar = dir + "/rootfs.tar"
        #expect(try execute("/bin/tar", ["-C", Fixtures.rootfs, "-cf", tar, "."]).code == 0)
        let r = try docker(["import", "--change", #"CMD ["sh"]"#, "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                            tar, DockerInstance.image])
        guard r.code == 0 else { throw ClientError("docker import: \(r.stderr)") }
    }

    /// `docker inspect --format FORMAT ID`, trimmed.
    func inspect(_ id: String, _ format: String) throws -> String {
        try docker(["inspect", "--format", format, id]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Removes containers and networks through docker, stops it, then sweeps what is left.
    func stop() {
        if daemon > 0 {
            if let ids = try? docker(["ps", "-aq"]).stdout.split(separator: "\n").map(String.init), !ids.isEmpty {
                _ = try? docker(["rm", "-f"] + ids)
            }
            _ = try? docker(["network", "prune", "-f"])
            kill(daemon, SIGTERM)
            var status: Int32 = 0
            if (try? eventually("dockerd exits", seconds: 20) { waitpid(daemon, &status, WNOHANG) == daemon }) == nil {
                kill(daemon, SIGKILL)
                waitForExit(daemon)
            }
        }
        _ = try? execute("/sbin/ip", ["link", "del", bridge])
        // overlay2 keeps its own home bind-mounted: storage, not a container.
        HostCleanup.sweep(dir: dir, cgroup: name, client: "docker with \(runtime)") { $0 == dir + "/data/overlay2" }
    }
}
