import CLinux
import Foundation
import Testing

/// A private containerd for one test: config, root, state, sockets, fifos and the runtime's
/// state root all live in one temporary directory; containers go under a cgroup parent of
/// their own. `stop()` removes every task, stops the daemon and checks nothing stayed behind.
final class ContainerdInstance: @unchecked Sendable {
    let name: String
    let dir: String
    let runtime: RuntimeUnderTest
    private var daemon: pid_t = 0
    var address: String { dir + "/containerd.sock" }

    init(_ runtime: RuntimeUnderTest) throws {
        self.runtime = runtime
        name = uniqueTestName("ctd")
        dir = NSTemporaryDirectory() + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let config = """
            version = 2
            root = "\(dir)/root"
            state = "\(dir)/state"
            disabled_plugins = ["io.containerd.grpc.v1.cri"]
            [grpc]
              address = "\(address)"
            [ttrpc]
              address = "\(address).ttrpc"
            [debug]
              address = "\(dir)/debug.sock"
            [plugins."io.containerd.internal.v1.opt"]
              path = "\(dir)/opt"
            """
        try config.write(toFile: dir + "/config.toml", atomically: true, encoding: .utf8)
        daemon = try spawn("/usr/bin/containerd", ["--config", dir + "/config.toml"],
                           stdout: dir + "/containerd.log", stderr: dir + "/containerd.log")
        do { try eventually("containerd answers") { try ctr(["version"]).code == 0 } } catch {
            stop()
            throw ClientError("containerd did not come up: \(log)")
        }
        let imported = try ctr(["images", "import", ImageFixture.archive])
        guard imported.code == 0 else { stop(); throw ClientError("ctr images import: \(imported.stderr)") }
    }

    var log: String { (try? String(contentsOfFile: dir + "/containerd.log", encoding: .utf8)) ?? "" }

    /// The cgroup path a container `id` is given (under this test's parent).
    func cgroup(_ id: String) -> String { "\(name)/\(id)" }

    @discardableResult
    func ctr(_ args: [String]) throws -> Outcome {
        try executeClient("/usr/bin/ctr", ["--address", address] + args)
    }

    /// The flags every `ctr run` of this test gets: the runtime under test, and state, fifos and
    /// cgroup inside the test's own space.
    func runFlags(_ id: String) -> [String] {
        ["--runc-binary", runtime.binary, "--runc-root", dir + "/runc", "--fifo-dir", dir + "/fifo",
         "--cgroup", "/" + cgroup(id)]
    }

    /// `ctr run [flags] IMAGE ID ARGS...`.
    func run(_ id: String, _ flags: [String], _ args: [String]) throws -> Outcome {
        try ctr(["run"] + runFlags(id) + flags + [ImageFixture.reference, id] + args)
    }

    /// Removes every task and container, stops the daemon, then kills, unmounts and removes
    /// whatever it left; records an issue if anything had to be cleaned by force.
    func stop() {
        if daemon > 0, (try? ctr(["version"]))?.code == 0 {
            let ids = ((try? ctr(["containers", "ls", "-q"]))?.stdout ?? "").split(separator: "\n").map(String.init)
            for id in ids {
                _ = try? ctr(["task", "delete", "--force", id])
                _ = try? ctr(["containers", "delete", id])
            }
        }
        if daemon > 0 {
            kill(daemon, SIGTERM)
            waitForExit(daemon)
            daemon = 0
        }
        // containerd keeps snapshot mounts until it deletes them; those go with the daemon.
        HostCleanup.sweep(dir: dir, cgroup: name, client: "containerd with \(runtime)") { $0.hasPrefix(dir + "/root/") }
    }
}

/// A client-side failure in a test's setup.
struct ClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
