@preconcurrency import Glibc
import CLinux
import Wire

/// sshim's life: parse, fork, and let the parent report the container's pid (or why there is
/// none) to whoever started it, while the child detaches and stays as the container's parent.
public enum ShimMain {
    /// The whole program: `sshim ...` or `sshim ctl ...`.
    public static func main(_ arguments: [String]) -> Never {
        if arguments.first == "--help" || arguments.first == "-h" { print(ShimOptions.usage); exit(0) }
        if arguments.first == "ctl" { ControlClient.main(Array(arguments.dropFirst())) }
        let options: ShimOptions
        do { options = try ShimOptions(arguments: arguments) } catch {
            fputs("sshim: \(error)\n\(ShimOptions.usage)\n", stderr)
            exit(2)
        }
        var ready: [Int32] = [-1, -1]
        guard cl_pipe2(&ready, O_CLOEXEC) == 0 else { fputs("sshim: pipe: \(String(cString: strerror(errno)))\n", stderr); exit(1) }
        // The starter lives only as long as whoever started it: if that dies mid-create, the
        // starter dies, the shim's report finds nobody to hear it, and the shim undoes the
        // create. A container is either handed over or gone.
        let starterParent = getppid()
        _ = cl_prctl(PR_SET_PDEATHSIG, UInt(SIGKILL), 0, 0, 0)
        if getppid() != starterParent { exit(1) }
        let child = fork()
        if child < 0 { fputs("sshim: fork: \(String(cString: strerror(errno)))\n", stderr); exit(1) }
        if child > 0 {
            close(ready[1])
            reportReadiness(from: ready[0], child: child)
        }
        close(ready[0])
        runDetached(options, readyFD: ready[1])
    }

    /// The starter's side: waits for "ok PID" or "error MESSAGE" from the detached shim.
    static func reportReadiness(from fd: Int32, child: pid_t) -> Never {
        var message: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buf, buf.count)
            if n > 0 { message.append(contentsOf: buf[0..<n]); continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        // The detached child was forked from us: reap it if it died early (its own child otherwise).
        var status: Int32 = 0
        _ = waitpid(child, &status, WNOHANG)
        let text = String(decoding: message, as: UTF8.self).trimmingCharacters(in: "\n")
        if text.hasPrefix("ok ") { print(text.dropFirst(3)); exit(0) }
        fputs("sshim: \(text.hasPrefix("error ") ? String(text.dropFirst(6)) : "the shim exited before the container was created")\n", stderr)
        exit(1)
    }

    /// The shim proper: its own session, subreaper, hard to OOM-kill, stdio on /dev/null (a
    /// starter reading our stdout to EOF must not wait for the container), then create and serve.
    static func runDetached(_ options: ShimOptions, readyFD: Int32) -> Never {
        /// False when the starter is gone (it died with whoever started it).
        @discardableResult
        func report(_ text: String) -> Bool {
            let bytes = Array((text + "\n").utf8)
            return bytes.withUnsafeBytes { write(readyFD, $0.baseAddress, $0.count) } == bytes.count
        }
        _ = cl_prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0)
        setsid()
        _ = cl_prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        let adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC)
        if adj >= 0 {
            _ = write(adj, "-999", 4)
            close(adj)
        }
        let null = open("/dev/null", O_RDWR)
        for fd: Int32 in 0...2 { dup2(null, fd) }
        if null > 2 { close(null) }
        chdir("/")
        signal(SIGPIPE, SIG_IGN)
        // SIGCHLD arrives through a signalfd, read on the loop.
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGCHLD)
        sigprocmask(SIG_BLOCK, &mask, nil)
        let sigfd = signalfd(-1, &mask, Int32(SFD_CLOEXEC | SFD_NONBLOCK))

        var createdStateDir = false
        do {
            if mkdir(options.stateDir, 0o700) == 0 { createdStateDir = true }
            else if errno != EEXIST { throw ShimError.sys("mkdir \(options.stateDir)") }
            if UnixSocket.isServed(options.stateDir + "/control.sock") {
                throw ShimError("\(options.stateDir) is in use by another shim")
            }
        } catch {
            report("error \(error)")
            exit(1)
        }
        let logExisted = access(options.logPath, F_OK) == 0
        let shim: Shim
        do {
            let loop = try EventLoop()
            let log = try OutputLog(path: options.logPath, maxSize: options.logMaxSize, maxFiles: options.logMaxFiles)
            shim = Shim(options: options, loop: loop, log: log, createdStateDir: createdStateDir)
            do {
                try shim.create()
                do { try shim.listen() } catch {
                    // The container exists by now: it goes too, or its init would wait forever.
                    _ = try? shim.runtime.run(["delete", "--force", options.id])
                    shim.io.closeAll()
                    throw error
                }
            } catch {
                log.close()
                if !logExisted { unlink(options.logPath) }
                throw error
            }
            loop.watch(sigfd) { [unowned shim] _ in
                var info = signalfd_siginfo()
                while read(sigfd, &info, MemoryLayout<signalfd_siginfo>.size) > 0 {}
                shim.reapChildren()
            }
        } catch {
            Shim.removeState(options.stateDir, createdDir: createdStateDir)
            report("error \(error)")
            exit(1)
        }
        guard report("ok \(shim.initPid)") else {
            // Nobody heard: the daemon that asked died during the create. Undo it.
            _ = try? shim.runtime.run(["delete", "--force", options.id])
            shim.io.closeAll()
            Shim.removeState(options.stateDir, createdDir: createdStateDir)
            exit(1)
        }
        close(readyFD)
        // The init may have exited already; its SIGCHLD is queued on the signalfd.
        shim.loop.run()
        exit(0)
    }
}

extension String {
    /// The string without leading and trailing characters from `set`.
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}
