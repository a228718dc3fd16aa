@preconcurrency import Glibc
import CLinux
import OCI

/// `srunc run`: create and start, then (in the foreground) stay the container's parent:
/// forward signals, proxy the terminal when srunc owns it, and exit with the container's code.
public struct Runner {
    public let store: StateStore
    public init(store: StateStore) { self.store = store }

    public func run(_ opts: CreateOptions, detach: Bool, keep: Bool) throws -> Int32 {
        let lifecycle = Lifecycle(store: store)
        let created = try Creator(store: store).create(opts, ownTerminal: !detach && opts.consoleSocket == nil)
        let record = created.record
        if detach {
            do { try lifecycle.start(opts.id, known: record) } catch { try? lifecycle.delete(opts.id, force: true, known: record); throw error }
            return 0
        }
        let signals = cl_signalfd_all(nil)
        var code: Int32 = 255
        do {
            try lifecycle.start(opts.id, known: record)
            code = Runner.waitLoop(initPid: record.initPid, signals: signals, master: created.ptyMaster)
        } catch {
            if !keep { try? lifecycle.delete(opts.id, force: true, known: record) }
            throw error
        }
        Log.debug("run \(opts.id): exited with \(code)")
        if !keep { try? lifecycle.delete(opts.id, force: true, known: record) }
        Log.debug("run \(opts.id): deleted")
        return code
    }

    /// Waits for the init, forwarding every signal srunc receives; returns the exit code
    /// (128 + signal when it was killed).
    static func waitLoop(initPid: pid_t, signals: Int32, master: Int32) -> Int32 {
        var terminal: TerminalProxy? = master >= 0 ? TerminalProxy(master: master) : nil
        defer { terminal?.restore() }
        while true {
            if let code = reap(initPid) {
                terminal?.drain()
                return code
            }
            var fds = [pollfd(fd: signals, events: Int16(POLLIN), revents: 0)]
            if let t = terminal { fds += t.pollSet() }
            if poll(&fds, nfds_t(fds.count), -1) < 0 { continue }
            if fds[0].revents & Int16(POLLIN) != 0 {
                var info = signalfd_siginfo()
                if read(signals, &info, MemoryLayout<signalfd_siginfo>.size) > 0 {
                    let sig = Int32(info.ssi_signo)
                    if sig == SIGWINCH { terminal?.copyWindowSize() }
                    else if sig != SIGCHLD && sig != SIGURG { kill(initPid, sig) }
                }
            }
            if fds.count > 1 { terminal?.handle(Array(fds[1...])) }
        }
    }

    /// Reaps every exited child (orphans included, when srunc is a subreaper); the init's code if it exited.
    private static func reap(_ initPid: pid_t) -> Int32? {
        var result: Int32?
        while true {
            var st: Int32 = 0
            let pid = waitpid(-1, &st, WNOHANG)
            if pid <= 0 { return result }
            if pid == initPid {
                result = cl_wifsignaled(st) != 0 ? 128 + cl_wtermsig(st) : cl_wexitstatus(st)
            }
        }
    }
}

/// Copies srunc's stdin to the pty master and the master to stdout, with the host terminal
/// in raw mode while the container owns it.
struct TerminalProxy {
    let master: Int32
    var stdinOpen = true
    var saved = [UInt8](repeating: 0, count: 256)
    var rawMode = false

    init(master: Int32) {
        self.master = master
        if isatty(0) != 0 { rawMode = cl_raw_tty(0, &saved, saved.count) == 0 }
        copyWindowSize()
    }

    func copyWindowSize() {
        var ws = winsize()
        if cl_ioctl_ptr(0, UInt(TIOCGWINSZ), &ws) == 0 { _ = cl_ioctl_ptr(master, UInt(TIOCSWINSZ), &ws) }
    }

    func pollSet() -> [pollfd] {
        [pollfd(fd: master, events: Int16(POLLIN), revents: 0), pollfd(fd: stdinOpen ? 0 : -1, events: Int16(POLLIN), revents: 0)]
    }

    mutating func handle(_ fds: [pollfd]) {
        if fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 { _ = copy(from: master, to: 1) }
        if fds[1].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 && !copy(from: 0, to: master) { stdinOpen = false }
    }

    /// One read and write; false at EOF or error.
    private func copy(from: Int32, to: Int32) -> Bool {
        var buf = [UInt8](repeating: 0, count: 32768)
        let n = read(from, &buf, buf.count)
        if n <= 0 { return false }
        try? Files.writeAll(to, Array(buf[0..<n]))
        return true
    }

    /// Output still buffered in the pty after the init exited.
    func drain() {
        _ = fcntlNonblock(master)
        while copy(from: master, to: 1) {}
    }

    private func fcntlNonblock(_ fd: Int32) -> Int32 {
        var on: Int32 = 1
        return cl_ioctl_int(fd, UInt(FIONBIO), &on)
    }

    func restore() {
        if rawMode { saved.withUnsafeBytes { _ = tcsetattr(0, TCSANOW, $0.bindMemory(to: termios.self).baseAddress!) } }
        close(master)
    }
}
