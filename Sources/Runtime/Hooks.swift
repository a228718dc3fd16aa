@preconcurrency import Glibc
import CLinux
import OCI

/// OCI lifecycle hooks: each runs with the container's state JSON on stdin, its own args and
/// env, and is killed when its timeout passes. Where a hook runs (runtime or container
/// namespace) is decided by the caller, at the moment the spec names.
enum HookRunner {
    /// Runs `hooks` in order; the first failure throws, naming the hook kind and path.
    static func run(_ hooks: [Hook]?, kind: String, state: HookState) throws {
        guard let hooks, !hooks.isEmpty else { return }
        let input = try JSON.encode(state)
        for hook in hooks {
            do { try runOne(hook, input: input) } catch { throw RuntimeError("\(kind) hook \(hook.path): \(error)") }
        }
    }

    /// Runs hooks whose failures only warn (poststart, poststop), as the spec requires.
    static func runWarning(_ hooks: [Hook]?, kind: String, state: HookState) {
        guard let hooks, !hooks.isEmpty, let input = try? JSON.encode(state) else { return }
        for hook in hooks {
            do { try runOne(hook, input: input) } catch {
                let line = Array("srunc: warning: \(kind) hook \(hook.path): \(error)\n".utf8)
                _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            }
        }
    }

    private static func runOne(_ hook: Hook, input: [UInt8]) throws {
        var pipe: [Int32] = [0, 0]
        try check("pipe") { cl_pipe2(&pipe, O_CLOEXEC) }
        let args = (hook.args?.isEmpty == false) ? hook.args! : [hook.path]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = (hook.env ?? []).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        let pid = cl_spawn_env(hook.path, &argv, &envp, nil, pipe[0], 1, 2)
        close(pipe[0])
        guard pid > 0 else { close(pipe[1]); throw RuntimeError.sys("start") }
        // A hook that does not read its stdin must not block us: ignore EPIPE.
        signal(SIGPIPE, SIG_IGN)
        try? Files.writeAll(pipe[1], input)
        close(pipe[1])
        let pidfd = cl_pidfd_open(pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        if let timeout = hook.timeout, timeout > 0, pidfd >= 0 {
            var p = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            var r: Int32
            repeat { r = poll(&p, 1, Int32(timeout * 1000)) } while r < 0 && errno == EINTR
            if r == 0 {
                _ = cl_pidfd_send_signal(pidfd, SIGKILL)
                var st: Int32 = 0
                waitpid(pid, &st, 0)
                throw RuntimeError("timed out after \(timeout)s")
            }
        }
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        if cl_wifsignaled(st) != 0 { throw RuntimeError("killed by signal \(cl_wtermsig(st))") }
        if cl_wexitstatus(st) != 0 { throw RuntimeError("exit status \(cl_wexitstatus(st))") }
    }

    static func state(_ spec: Spec, id: String, status: ContainerStatus, pid: pid_t?, bundle: String) -> HookState {
        HookState(ociVersion: spec.ociVersion, id: id, status: status.rawValue, pid: pid, bundle: bundle, annotations: spec.annotations)
    }
}
