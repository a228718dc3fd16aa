@preconcurrency import Glibc
import CLinux
import OCI

/// The container's terminal: a pty allocated from the container's own devpts, its master sent
/// to whoever listens on --console-socket (SCM_RIGHTS), its slave made the init's controlling tty.
struct Console {
    /// The slave side, kept by the init until it becomes fds 0-2.
    let slaveFD: Int32

    /// Opens a pty inside the (already pivoted) container, binds the slave on /dev/console and
    /// hands the master to `socketFD`. Only the init's pty becomes /dev/console.
    static func allocate(socketFD: Int32, size: ConsoleSize?, owner: UInt32, bindConsole: Bool) throws -> Console {
        let master = try check("open /dev/ptmx") { open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC) }
        defer { close(master) }
        try check("unlockpt") { cl_unlockpt(master) }
        var name = [CChar](repeating: 0, count: 128)
        if cl_ptsname(master, &name, name.count) != 0 { throw RuntimeError.sys("ptsname") }
        let slavePath = String(nulTerminated: name)
        let slave = try check("open \(slavePath)") { open(slavePath, O_RDWR | O_NOCTTY | O_CLOEXEC) }
        _ = fchown(slave, owner, UInt32.max)
        if let size {
            var ws = winsize(ws_row: UInt16(size.height), ws_col: UInt16(size.width), ws_xpixel: 0, ws_ypixel: 0)
            _ = cl_ioctl_ptr(master, UInt(TIOCSWINSZ), &ws)
        }
        if bindConsole && Files.exists("/dev/console") {
            try check("bind \(slavePath) on /dev/console") { mount(slavePath, "/dev/console", nil, UInt(MS_BIND), nil) }
        }
        if cl_send_fd(socketFD, master, "/dev/ptmx") != 0 { throw RuntimeError.sys("send pty master to console socket") }
        return Console(slaveFD: slave)
    }

    /// Makes the slave the controlling terminal of a new session and the process's stdio.
    func attachAsStdio() throws {
        if setsid() < 0 { throw RuntimeError.sys("setsid") }
        try check("make pty the controlling terminal") { cl_set_ctty(slaveFD) }
        for fd: Int32 in 0...2 { try check("dup2 pty") { dup2(slaveFD, fd) } }
        if slaveFD > 2 { close(slaveFD) }
    }
}
