import CLinux
import Foundation
import OCI
import Testing

/// A runtime under test: srunc as built by this package, or Debian's runc as the reference.
/// Each test gets its own state root so tests can run in parallel.
struct RuntimeUnderTest: CustomStringConvertible, Sendable {
    let name: String
    let binary: String
    /// Added to the runtime's environment on every call.
    var env: [String: String] = [:]
    var description: String { name }

    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let srunc = RuntimeUnderTest(
        name: "srunc",
        binary: ProcessInfo.processInfo.environment["SRUNC_BIN"] ?? packageRoot + "/.build/debug/srunc")
    static let runc = RuntimeUnderTest(name: "runc", binary: "/usr/sbin/runc")
    /// srunc driving only the v2 hierarchy of this hybrid host (/sys/fs/cgroup/unified), as on
    /// a unified host; limits whose controllers that tree lacks are refused, not faked.
    static let sruncV2 = RuntimeUnderTest(name: "srunc-v2", binary: srunc.binary,
                                          env: ["SRUNC_CGROUP2_MOUNT": "/sys/fs/cgroup/unified"])
    static let all = [srunc, runc]
    /// crun through spec-fixtures/crun-v1.sh (crun refuses hybrid cgroup hosts; the wrapper hides
    /// the empty cgroup2 mount). Debian's crun 1.8 wants ociVersion 1.0.x: ShimInstance sets it.
    static let crun = RuntimeUnderTest(name: "crun", binary: packageRoot + "/spec-fixtures/crun-v1.sh")
    /// The runtimes sshim is tested over: any OCI runtime must work under it.
    static let underShim = [srunc, runc, crun]
}

/// What a command printed and how it ended.
struct Outcome {
    let stdout: String
    let stderr: String
    let code: Int32
}

/// Runs a program to completion, capturing its output in files: a created container keeps
/// the stdio it inherited, so pipes would never reach EOF. stdin is /dev/null; `env` is added
/// to the test runner's environment.
@discardableResult
func execute(_ path: String, _ args: [String], cwd: String? = nil, env: [String: String] = [:]) throws -> Outcome {
    let base = NSTemporaryDirectory() + "srunc-out-\(UUID().uuidString)"
    defer {
        try? FileManager.default.removeItem(atPath: base + ".out")
        try? FileManager.default.removeItem(atPath: base + ".err")
    }
    let pid = try spawn(path, args, cwd: cwd, env: env, stdout: base + ".out", stderr: base + ".err")
    let code = waitForExit(pid)
    return Outcome(stdout: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
                   stderr: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "", code: code)
}

/// Starts a program with stdout and stderr appended to files, without waiting: for daemons
/// the test owns (containerd) and must end by pid.
func spawn(_ path: String, _ args: [String], cwd: String? = nil, env: [String: String] = [:],
           stdout: String, stderr: String) throws -> pid_t {
    let out = open(stdout, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
    let err = open(stderr, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
    defer { close(out); close(err) }
    var environment = ProcessInfo.processInfo.environment
    environment.merge(env) { $1 }
    var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    var argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
    let pid = cl_spawn_env(path, &argv, &envp, cwd, -1, out, err)
    guard pid > 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    return pid
}

/// Reaps a child; its exit code, or 128+signal as a shell reports it.
@discardableResult
func waitForExit(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let signaled = (status & 0x7f) != 0
    return signaled ? 128 + (status & 0x7f) : (status >> 8) & 0xff
}

/// Reaps a child that must exit within `seconds`: killed (and the test failed) if it does not,
/// so that a hang is a failure, not a stalled suite. Its exit code as waitForExit gives it.
func exitCode(of pid: pid_t, within seconds: Double = 20) throws -> Int32 {
    var status: Int32 = 0
    do {
        try eventually("process \(pid) exits", seconds: seconds) { waitpid(pid, &status, WNOHANG) == pid }
    } catch {
        kill(pid, SIGKILL)
        waitForExit(pid)
        throw error
    }
    let signaled = (status & 0x7f) != 0
    return signaled ? 128 + (status & 0x7f) : (status >> 8) & 0xff
}

/// The busybox rootfs, built by spec-fixtures/build-rootfs.sh at a fixed path the first time a
/// test needs it (the script renames it into place, so a half-built tree is never used).
enum Fixtures {
    static let rootfs: String = {
        let dir = NSTemporaryDirectory() + "srunc-fixture-rootfs"
        if FileManager.default.fileExists(atPath: dir + "/bin/busybox") { return dir }
        let r = try! execute("/bin/sh", [RuntimeUnderTest.packageRoot + "/spec-fixtures/build-rootfs.sh", dir])
        precondition(r.code == 0, "fixture build failed: \(r.stderr)")
        return dir
    }()

    static func config(_ name: String = "minimal.json") throws -> Spec {
        let data = try Data(contentsOf: URL(fileURLWithPath: RuntimeUnderTest.packageRoot + "/spec-fixtures/" + name))
        return try JSONDecoder().decode(Spec.self, from: data)
    }
}

/// A throwaway bundle (config.json + a private copy of the busybox rootfs) and state root for
/// one container. `cleanup()` force-deletes the container and checks nothing was left mounted.
final class TestBundle: @unchecked Sendable {
    let runtime: RuntimeUnderTest
    let dir: String
    let stateRoot: String
    let id: String
    var spec: Spec

    init(_ runtime: RuntimeUnderTest, _ tweak: (inout Spec) -> Void = { _ in }) throws {
        self.runtime = runtime
        let unique = "\(getpid())-\(UUID().uuidString.prefix(8).lowercased())"
        dir = NSTemporaryDirectory() + "srunc-test-\(unique)"
        stateRoot = dir + "-state"
        id = "t-\(unique)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let cp = try execute("/bin/cp", ["-a", Fixtures.rootfs, dir + "/rootfs"])
        precondition(cp.code == 0, cp.stderr)
        spec = try Fixtures.config()
        tweak(&spec)
        try writeConfig()
    }

    func writeConfig() throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted]
        try enc.encode(spec).write(to: URL(fileURLWithPath: dir + "/config.json"))
    }

    var rootfs: String { dir + "/rootfs" }

    /// `<runtime> --root <state> ARGS` with the bundle as working directory.
    @discardableResult
    func runtimeCommand(_ args: [String]) throws -> Outcome {
        try execute(runtime.binary, ["--root", stateRoot] + args, cwd: dir, env: runtime.env)
    }

    /// `run` in the foreground: the container's output and exit code.
    func run(_ extra: [String] = []) throws -> Outcome {
        try runtimeCommand(["run"] + extra + [id])
    }

    func state(_ id: String? = nil) throws -> [String: Any]? {
        let r = try runtimeCommand(["state", id ?? self.id])
        guard r.code == 0 else { return nil }
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
    }

    /// Polls `state` until the status is `want` (or a missing container when `want` is ""),
    /// giving up after 30 s (a deadline for a failure, not a wait); returns the last status seen.
    func waitForStatus(_ want: String) async throws -> String {
        var status = ""
        _ = try? eventually("status \(want)", seconds: 30) {
            status = (try state()?["status"] as? String) ?? ""
            return status == want
        }
        return status
    }

    /// Removes the container, the bundle and the state root; then nothing of it may stay mounted.
    func cleanup() {
        _ = try? runtimeCommand(["delete", "--force", id])
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        #expect(!mounts.contains(dir), "mounts left behind under \(dir)")
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.removeItem(atPath: stateRoot)
    }
}

/// Sets process.args to `sh -c SCRIPT`.
func shell(_ script: String) -> (inout Spec) -> Void {
    { $0.process!.args = ["sh", "-c", script] }
}

/// Runs blocking work on its own thread: a test that then blocks too (accept, poll) must not
/// starve Swift's small cooperative pool, which would never start a Task.
final class BackgroundRun<T: Sendable>: @unchecked Sendable {
    private var result: Result<T, Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () throws -> T) {
        Thread.detachNewThread { [self] in
            result = Result { try body() }
            done.signal()
        }
    }

    func value() throws -> T {
        done.wait()
        return try result!.get()
    }
}

/// Waits until `condition` holds, checking every few milliseconds; throws with `what` when
/// `seconds` pass first. Tests wait for conditions this way, never for a fixed duration.
func eventually(_ what: @autoclosure () -> String, seconds: Double = 20, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        if (try? condition()) == true { return }
        guard Date() < deadline else { throw ClientError("not within \(seconds) s: \(what())") }
        usleep(10_000)
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on now, chosen by the kernel (bind to port 0):
/// two daemons that each allocate "the next free port" from the same range would pick the same one.
func freeLoopbackPort(type: Int32 = Int32(SOCK_STREAM.rawValue)) throws -> UInt16 {
    let fd = socket(AF_INET, type, 0)
    guard fd >= 0 else { throw ClientError("socket: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw ClientError("bind 127.0.0.1:0: errno \(errno)") }
    return UInt16(bigEndian: address.sin_port)
}
