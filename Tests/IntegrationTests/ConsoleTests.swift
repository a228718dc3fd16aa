import CLinux
import Foundation
import OCI
import Testing

/// runc's --console-socket protocol: the runtime connects, the init sends the pty master with
/// SCM_RIGHTS, and whoever holds the master talks to the container's shell.
@Suite("console") struct ConsoleTests {
    /// A listening unix socket at `path`.
    func listenSocket(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in path.utf8.enumerated() { p[i] = b } }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok == 0, Glibc.listen(fd, 1) == 0 else { throw POSIXError(.EADDRINUSE) }
        return fd
    }

    /// Reads from `fd` until `needle` shows up or two seconds pass; returns all that was read.
    func readPty(_ fd: Int32, until needle: String) -> String {
        var text = ""
        let deadline = Date().addingTimeInterval(5)
        var buf = [UInt8](repeating: 0, count: 4096)
        while !text.contains(needle) && Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let n = Glibc.read(fd, &buf, buf.count)
            if n <= 0 { break }
            text += String(decoding: buf[0..<n], as: UTF8.self)
        }
        return text
    }

    func sendPty(_ fd: Int32, _ text: String) {
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
    }

    @Test("pty master over the console socket", arguments: RuntimeUnderTest.all)
    func consoleSocket(_ rt: RuntimeUnderTest) async throws {
        let b = try TestBundle(rt) {
            $0.process!.terminal = true
            $0.process!.args = ["sh"]
            $0.process!.consoleSize = ConsoleSize(height: 33, width: 111)
        }
        defer { b.cleanup() }
        let path = b.dir + "/console.sock"
        let listener = try listenSocket(path)
        defer { close(listener) }
        let created = try b.runtimeCommand(["create", "--console-socket", path, b.id])
        #expect(created.code == 0, "\(created.stderr)")
        let conn = accept(listener, nil, nil)
        #expect(conn >= 0)
        defer { close(conn) }
        let master = cl_recv_fd(conn)
        try #require(master >= 0)
        defer { close(master) }
        #expect(try b.runtimeCommand(["start", b.id]).code == 0)
        sendPty(master, "echo hi-$((40+2)); stty size; tty\n")
        let out = readPty(master, until: "/dev/pts/0")
        #expect(out.contains("hi-42"))
        #expect(out.contains("33 111"))
        #expect(out.contains("/dev/pts/0"))
        sendPty(master, "exit 3\n")
        let status = try await b.waitForStatus("stopped")
        #expect(status == "stopped")
    }
}
