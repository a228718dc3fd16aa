@preconcurrency import Glibc
import CLinux
import Wire

/// The stdio of one container process as the shim holds it: the writing end of its stdin and
/// the reading ends of its stdout and stderr (pipes), or one pty master for all three.
final class ProcessIO {
    /// The shim's ends (-1 when absent). With a terminal, all three are the master.
    var stdinFD: Int32 = -1
    var stdoutFD: Int32 = -1
    var stderrFD: Int32 = -1
    /// The process's ends, given to the runtime and closed in the shim once it has run.
    var childStdin: Int32 = -1
    var childStdout: Int32 = -1
    var childStderr: Int32 = -1
    /// Where the runtime sends the pty master (terminal only).
    var consoleSocketPath: String?
    private var consoleListener: Int32 = -1
    var isTerminal: Bool { consoleSocketPath != nil }

    /// Pipes for stdout and stderr, and for stdin when asked (else /dev/null).
    static func pipes(stdin: Bool) throws(ShimError) -> ProcessIO {
        let io = ProcessIO()
        func pipePair() throws(ShimError) -> (Int32, Int32) {
            var fds: [Int32] = [-1, -1]
            if cl_pipe2(&fds, O_CLOEXEC) != 0 { throw ShimError.sys("pipe") }
            return (fds[0], fds[1])
        }
        if stdin {
            (io.childStdin, io.stdinFD) = try pipePair()
        } else {
            io.childStdin = open("/dev/null", O_RDONLY | O_CLOEXEC)
        }
        (io.stdoutFD, io.childStdout) = try pipePair()
        (io.stderrFD, io.childStderr) = try pipePair()
        for fd in [io.stdinFD, io.stdoutFD, io.stderrFD] where fd >= 0 { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
        return io
    }

    /// A console socket at `path` for the runtime to send the pty master to; the process's
    /// stdio until then is /dev/null.
    static func terminal(socketPath path: String) throws(ShimError) -> ProcessIO {
        let io = ProcessIO()
        do { io.consoleListener = try UnixSocket.listen(path: path) } catch { throw ShimError(error.description) }
        io.consoleSocketPath = path
        io.childStdin = open("/dev/null", O_RDONLY | O_CLOEXEC)
        io.childStdout = open("/dev/null", O_WRONLY | O_CLOEXEC)
        io.childStderr = open("/dev/null", O_WRONLY | O_CLOEXEC)
        return io
    }

    /// After the runtime ran: the child ends go, and a terminal's master is collected (the
    /// runtime connected and sent it before exiting, so it waits in the backlog).
    func runtimeFinished(succeeded: Bool) throws(ShimError) {
        for fd in [childStdin, childStdout, childStderr] where fd >= 0 { close(fd) }
        childStdin = -1; childStdout = -1; childStderr = -1
        guard let path = consoleSocketPath else { return }
        defer { close(consoleListener); consoleListener = -1; unlink(path) }
        guard succeeded else { return }
        _ = fcntl(consoleListener, F_SETFL, O_NONBLOCK)
        let conn = cl_accept4(consoleListener, Int32(SOCK_CLOEXEC.rawValue))
        if conn < 0 { throw ShimError.sys("no pty master on the console socket") }
        defer { close(conn) }
        let master = cl_recv_fd(conn)
        if master < 0 { throw ShimError.sys("receive pty master") }
        _ = fcntl(master, F_SETFD, FD_CLOEXEC)
        _ = fcntl(master, F_SETFL, O_NONBLOCK)
        stdinFD = master; stdoutFD = master; stderrFD = -1
    }

    /// Sets the terminal's window size (TIOCSWINSZ), which the process sees as SIGWINCH.
    func resize(rows: Int, cols: Int) throws(ShimError) {
        guard isTerminal, stdoutFD >= 0 else { throw ShimError("the process has no terminal") }
        var size = winsize(ws_row: UInt16(clamping: rows), ws_col: UInt16(clamping: cols), ws_xpixel: 0, ws_ypixel: 0)
        if cl_ioctl_ptr(stdoutFD, UInt(TIOCSWINSZ), &size) != 0 { throw ShimError.sys("resize") }
    }

    /// Ends input: the process reads EOF (a terminal gets ^D).
    func closeStdin() {
        if isTerminal {
            if stdinFD >= 0 { _ = write(stdinFD, [UInt8(4)], 1) }
            return
        }
        if stdinFD >= 0 { close(stdinFD); stdinFD = -1 }
    }

    func closeAll() {
        var closed = Set<Int32>()
        for fd in [stdinFD, stdoutFD, stderrFD, childStdin, childStdout, childStderr, consoleListener] where fd >= 0 {
            if closed.insert(fd).inserted { close(fd) }
        }
        stdinFD = -1; stdoutFD = -1; stderrFD = -1
        if let path = consoleSocketPath, consoleListener >= 0 { unlink(path) }
        consoleListener = -1
    }
}
