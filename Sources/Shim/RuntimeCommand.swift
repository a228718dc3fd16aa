@preconcurrency import Glibc
import CLinux
import Wire

/// Runs the OCI runtime (srunc, runc, crun) one command at a time and waits for it. Its
/// errors come from its --log file in JSON lines, as containerd's shim reads them.
struct RuntimeCommand {
    let binary: String
    let root: String?
    let logPath: String
    let scratchPath: String

    /// `<runtime> [--root R] --log L --log-format json ARGS`, with the given stdio, or with
    /// stdout and stderr captured when none is given. Throws with the runtime's own message.
    @discardableResult
    func run(_ args: [String], stdin: Int32 = -1, stdout: Int32 = -1, stderr: Int32 = -1) throws(ShimError) -> String {
        var argv = [binary]
        if let root { argv += ["--root", root] }
        argv += ["--log", logPath, "--log-format", "json"] + args
        let logStart = fileSize(logPath)
        var captured: Int32 = -1
        if stdout < 0 || stderr < 0 {
            captured = open(scratchPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            if captured < 0 { throw ShimError.sys("open \(scratchPath)") }
        }
        defer { if captured >= 0 { close(captured); unlink(scratchPath) } }
        let pid = RuntimeCommand.spawn(argv, stdin: stdin, stdout: stdout >= 0 ? stdout : captured,
                                       stderr: stderr >= 0 ? stderr : captured)
        if pid < 0 { throw ShimError.sys("run \(binary)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if captured >= 0 { lseek(captured, 0, SEEK_SET) }
        let output = captured >= 0 ? TextFile.rest(of: captured) : ""
        guard cl_wifexited(status) != 0 && cl_wexitstatus(status) == 0 else {
            let message = lastError(since: logStart) ?? output.split(separator: "\n").last.map(String.init)
            throw ShimError("\(binary) \(args.first ?? ""): \(message ?? "exit status \(status)")")
        }
        return output
    }

    static func spawn(_ argv: [String], stdin: Int32, stdout: Int32, stderr: Int32) -> pid_t {
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        return cl_spawn_env(argv[0].contains("/") ? argv[0] : RuntimeCommand.which(argv[0]), &cArgs, environ, nil,
                            stdin, stdout, stderr)
    }

    /// A bare program name looked up in PATH (posix_spawn wants a path).
    static func which(_ name: String) -> String {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in path.split(separator: ":") where access("\(dir)/\(name)", X_OK) == 0 { return "\(dir)/\(name)" }
        return name
    }

    /// The message of the last `"level":"error"` line the runtime logged after `offset`.
    func lastError(since offset: Int) -> String? {
        let fd = open(logPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        lseek(fd, off_t(offset), SEEK_SET)
        let text = TextFile.rest(of: fd)
        for line in text.split(separator: "\n").reversed() {
            guard let record = try? JSONValue.parse(String(line)), record["level"]?.string == "error",
                  let msg = record["msg"]?.string else { continue }
            return msg
        }
        return nil
    }

    func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }
}
