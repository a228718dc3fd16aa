@preconcurrency import Glibc
import CLinux
import Wire

/// One container's shim after it has detached: the container's parent (child subreaper), the
/// holder of its stdio, the writer of its log and exit file, and the server of its control
/// socket. Everything happens on one thread, in `loop`.
final class Shim {
    /// What the shim itself knows; `state` asks the runtime for paused.
    enum Status: String { case created, running, stopped }

    let options: ShimOptions
    let loop: EventLoop
    let runtime: RuntimeCommand
    let log: OutputLog
    var io: ProcessIO
    var initPid: pid_t = 0
    var status = Status.created
    var exit: ExitRecord?
    var oom = OOMCounter(file: nil as String?)
    var connections: [Int32: Connection] = [:]
    var waiters: [(Connection, JSONValue)] = []
    var execs: [pid_t: ExecSession] = [:]
    var execCount = 0
    var listener: Int32 = -1
    var createdStateDir = false

    var controlPath: String { options.stateDir + "/control.sock" }
    var exitPath: String { options.stateDir + "/exit" }
    var pidPath: String { options.stateDir + "/init.pid" }

    init(options: ShimOptions, loop: EventLoop, log: OutputLog, createdStateDir: Bool) {
        self.options = options
        self.loop = loop
        self.log = log
        self.createdStateDir = createdStateDir
        io = ProcessIO()
        runtime = RuntimeCommand(binary: options.runtime, root: options.runtimeRoot,
                                 logPath: options.stateDir + "/runtime.log", scratchPath: options.stateDir + "/runtime.out")
    }

    // MARK: create

    /// `<runtime> create` with the container's stdio; afterwards the init is our child.
    func create() throws(ShimError) {
        io = options.terminal ? try ProcessIO.terminal(socketPath: options.stateDir + "/console.sock")
                              : try ProcessIO.pipes(stdin: options.stdin)
        var args = ["create", "--bundle", options.bundle, "--pid-file", pidPath]
        if let socket = io.consoleSocketPath { args += ["--console-socket", socket] }
        do {
            try runtime.run(args + [options.id], stdin: io.childStdin, stdout: io.childStdout, stderr: io.childStderr)
            try io.runtimeFinished(succeeded: true)
        } catch {
            try? io.runtimeFinished(succeeded: false)
            io.closeAll()
            _ = try? runtime.run(["delete", "--force", options.id])
            throw error
        }
        guard let pid = TextFile.pid(pidPath) else {
            _ = try? runtime.run(["delete", "--force", options.id])
            io.closeAll()
            throw ShimError("the runtime wrote no pid file")
        }
        initPid = pid
        oom = OOMCounter(pid: pid)
        watchOutput(io.stdoutFD, stream: "stdout")
        if io.stderrFD >= 0 { watchOutput(io.stderrFD, stream: "stderr") }
    }

    /// Starts serving the control socket.
    func listen() throws(ShimError) {
        do { listener = try UnixSocket.listen(path: controlPath) } catch { throw ShimError(error.description) }
        loop.watch(listener) { [unowned self] _ in accept() }
    }

    private func accept() {
        let fd = cl_accept4(listener, Int32(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue))
        guard fd >= 0 else { return }
        let conn = Connection(fd: fd, loop: loop)
        conn.onClose = { [unowned self] in forget($0) }
        conn.onDrained = { [unowned self] in pumpLogs($0) }
        connections[fd] = conn
        loop.watch(fd) { [unowned self, unowned conn] events in
            if events & EventLoop.writable != 0 { conn.writable() }
            if events & (EventLoop.readable | EventLoop.hangup) != 0, !conn.closed { readRequests(conn) }
        }
    }

    private func forget(_ conn: Connection) {
        connections[conn.fd] = nil
        waiters.removeAll { $0.0 === conn }
        for session in execs.values where session.conn === conn { session.conn = nil }
    }

    private func readRequests(_ conn: Connection) {
        var buf = [UInt8](repeating: 0, count: 16 * 1024)
        let n = read(conn.fd, &buf, buf.count)
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { conn.close(); return }
        guard n > 0 else { return }
        conn.input.append(contentsOf: buf[0..<n])
        while let nl = conn.input.firstIndex(of: 0x0a) {
            let line = Array(conn.input[..<nl])
            conn.input.removeSubrange(...nl)
            if !line.allSatisfy({ $0 == 0x20 || $0 == 0x0d || $0 == 0x09 }) { handle(line, from: conn) }
            if conn.closed || !loop.running { return }
        }
        if conn.input.count > Connection.maxLine {
            conn.fail(.null, "invalid-request", "request line longer than \(Connection.maxLine) bytes")
            conn.close()
        }
    }

    // MARK: output

    /// Reads a process's output as it comes; `stream` names it in the log and to clients.
    func watchOutput(_ fd: Int32, stream: String, exec: ExecSession? = nil) {
        loop.watch(fd) { [unowned self] _ in _ = drain(fd, stream: stream, exec: exec, untilEmpty: false) }
    }

    /// Reads what is there (one chunk, or everything when `untilEmpty`); at EOF the fd is
    /// closed. Returns whether the stream ended.
    @discardableResult
    func drain(_ fd: Int32, stream: String, exec: ExecSession?, untilEmpty: Bool) -> Bool {
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        repeat {
            let n = read(fd, &buf, buf.count)
            if n > 0 {
                deliver(buf[0..<n], stream: stream, exec: exec)
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return false }
            // EOF, or EIO from a pty master whose slave is gone.
            loop.unwatch(fd)
            close(fd)
            if let exec { exec.io.forget(fd) } else { endOfInitStream(fd, stream: stream) }
            return true
        } while untilEmpty
        return false
    }

    private func deliver(_ bytes: ArraySlice<UInt8>, stream: String, exec: ExecSession?) {
        func event() -> JSONValue {
            .object([("event", .string("output")), ("stream", .string(stream)), ("data", .string(Base64.encode(bytes)))])
        }
        if let exec {
            exec.conn?.send(event())
            return
        }
        let records = log.append(stream: stream, bytes)
        let attached = connections.values.filter(\.attached)
        if !attached.isEmpty {
            let e = event()
            for conn in attached { conn.send(e) }
        }
        sendToFollowers(records)
    }

    private func endOfInitStream(_ fd: Int32, stream: String) {
        sendToFollowers(log.finish(stream: stream))
        io.forget(fd)
    }

    private func sendToFollowers(_ records: [[UInt8]]) {
        guard !records.isEmpty else { return }
        for conn in connections.values where conn.followID != nil && conn.logRead == nil {
            for r in records { conn.send(bytes: Shim.logEvent(r)) }
        }
    }

    /// `{"event":"log","record":RECORD}` around a stored record line.
    static func logEvent(_ record: [UInt8]) -> [UInt8] {
        var line = Array("{\"event\":\"log\",\"record\":".utf8)
        line.append(contentsOf: record.dropLast())
        line.append(contentsOf: "}\n".utf8)
        return line
    }

    // MARK: children

    /// SIGCHLD: reaps every exited child, the init, exec'd processes and re-parented orphans.
    func reapChildren() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            if pid == initPid { initExited(status) }
            else if let session = execs.removeValue(forKey: pid) { execExited(session, status) }
        }
    }

    func initExited(_ status: Int32) {
        let record = ExitRecord(status: status, oomKilled: oom.kills() > 0)
        // The file first: whoever asks later, the daemon after a restart included, learns the code.
        try? record.write(to: exitPath)
        for fd in Set([io.stdoutFD, io.stderrFD]) where fd >= 0 {
            drain(fd, stream: fd == io.stderrFD ? "stderr" : "stdout", exec: nil, untilEmpty: true)
        }
        exit = record
        self.status = .stopped
        for (conn, id) in waiters { conn.reply(id, record.json) }
        waiters.removeAll()
        for conn in connections.values where conn.attached {
            conn.send(.object([("event", .string("exit")), ("exit", record.json)]))
            conn.attached = false
            conn.stdinTarget = nil
        }
        for conn in connections.values where conn.followID != nil && conn.logRead == nil {
            conn.reply(conn.followID!, .object([("end", .string("exited"))]))
            conn.followID = nil
        }
    }

    private func execExited(_ session: ExecSession, _ status: Int32) {
        for fd in Set([session.io.stdoutFD, session.io.stderrFD]) where fd >= 0 {
            drain(fd, stream: fd == session.io.stderrFD ? "stderr" : "stdout", exec: session, untilEmpty: true)
        }
        let record = ExitRecord(status: status, oomKilled: false)
        var result: [(String, JSONValue)] = [("pid", .number(Double(session.pid))), ("exitCode", .number(Double(record.code)))]
        if let signal = record.signal { result.append(("signal", .number(Double(signal)))) }
        session.conn?.reply(session.requestID, .object(result))
        if session.conn?.stdinTarget === session.io { session.conn?.stdinTarget = nil }
        for fd in [session.io.stdoutFD, session.io.stderrFD] where fd >= 0 { loop.unwatch(fd) }
        session.io.closeAll()
        for suffix in [".json", ".pid"] { unlink(session.filePrefix + suffix) }
    }

    // MARK: shutting down

    /// Removes what the shim made in the state directory, and the directory if it made it.
    func removeState() { Shim.removeState(options.stateDir, createdDir: createdStateDir) }

    /// The same before a Shim exists (a failed start).
    static func removeState(_ dir: String, createdDir: Bool) {
        for name in ["control.sock", "init.pid", "exit", "exit.tmp", "runtime.log", "runtime.out", "console.sock"] {
            unlink(dir + "/" + name)
        }
        if createdDir { rmdir(dir) }
    }

    /// Stops the loop once every reply is out (a few tries: clients that read nothing lose it).
    func finish() {
        if listener >= 0 { loop.unwatch(listener); close(listener); listener = -1 }
        for conn in connections.values { conn.flush() }
        loop.running = false
    }
}

/// A process started with `exec`: its stdio and the client waiting for its exit code.
final class ExecSession {
    let number: Int
    let io: ProcessIO
    var pid: pid_t = 0
    weak var conn: Connection?
    let requestID: JSONValue
    let filePrefix: String

    init(number: Int, io: ProcessIO, conn: Connection, requestID: JSONValue, filePrefix: String) {
        self.number = number
        self.io = io
        self.conn = conn
        self.requestID = requestID
        self.filePrefix = filePrefix
    }
}

extension ProcessIO {
    /// Marks an fd the shim has closed, so it is not closed twice.
    func forget(_ fd: Int32) {
        if stdinFD == fd { stdinFD = -1 }
        if stdoutFD == fd { stdoutFD = -1 }
        if stderrFD == fd { stderrFD = -1 }
    }
}
