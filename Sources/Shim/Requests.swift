@preconcurrency import Glibc
import Wire

/// The control protocol: one JSON request per line, `{"id":ID,"method":M,"params":{...}}`;
/// each gets `{"id":ID,"result":...}` or `{"id":ID,"error":{"code","message"}}`, and
/// streams send id-less `{"event":...}` lines in between. docs/sshim-protocol.md lists them.
extension Shim {
    func handle(_ line: [UInt8], from conn: Connection) {
        let request: JSONValue
        do { request = try JSONValue.parse(line) } catch {
            conn.fail(.null, "invalid-json", "\(error)")
            return
        }
        let id = request["id"] ?? .null
        guard let method = request["method"]?.string else {
            conn.fail(id, "invalid-request", "a request is an object with a string \"method\"")
            return
        }
        let params = request["params"] ?? .object([])
        do {
            try dispatch(method, params, id, conn)
        } catch {
            conn.fail(id, error.code, error.description)
        }
    }

    private func dispatch(_ method: String, _ params: JSONValue, _ id: JSONValue, _ conn: Connection) throws(RequestError) {
        switch method {
        case "state":
            conn.reply(id, stateJSON())
        case "start":
            guard status == .created else { throw .precondition("container is \(status.rawValue), not created") }
            try runtimeCall(["start", options.id])
            if status == .created { status = .running }
            conn.reply(id, .object([]))
        case "kill":
            let signal = try signalParam(params)
            guard exit == nil else { throw .precondition("container has exited") }
            try runtimeCall(["kill"] + (params["all"]?.bool == true ? ["--all"] : []) + [options.id, signal])
            conn.reply(id, .object([]))
        case "pause", "resume":
            guard status == .running, exit == nil else { throw .precondition("container is not running") }
            try runtimeCall([method, options.id])
            conn.reply(id, .object([]))
        case "wait":
            if let exit { conn.reply(id, exit.json) } else { waiters.append((conn, id)) }
        case "attach":
            guard exit == nil else { throw .precondition("container has exited") }
            conn.attached = true
            conn.stdinTarget = io
            conn.reply(id, .object([("terminal", .bool(io.isTerminal)), ("stdin", .bool(io.stdinFD >= 0))]))
        case "detach":
            conn.attached = false
            conn.stdinTarget = nil
            conn.reply(id, .object([]))
        case "stdin":
            guard let target = conn.stdinTarget, target.stdinFD >= 0 else { throw .precondition("no stdin to write to") }
            guard let text = params["data"]?.string, let bytes = Base64.decode(text) else {
                throw .params("params.data: base64 bytes")
            }
            try writeAll(target.stdinFD, bytes)
            conn.reply(id, .object([("written", .number(Double(bytes.count)))]))
        case "closeStdin":
            guard let target = conn.stdinTarget else { throw .precondition("not attached") }
            target.closeStdin()
            conn.reply(id, .object([]))
        case "resize":
            guard let rows = params["rows"]?.int, let cols = params["cols"]?.int, rows > 0, cols > 0 else {
                throw .params("params.rows and params.cols: positive integers")
            }
            let target = conn.stdinTarget.flatMap { $0.isTerminal ? $0 : nil } ?? io
            do { try target.resize(rows: rows, cols: cols) } catch { throw .precondition(error.description) }
            conn.reply(id, .object([]))
        case "exec":
            try exec(params, id, conn)
        case "logs":
            let tail = params["tail"]?.int
            if params["tail"] != nil && (tail ?? -1) < 0 { throw .params("params.tail: a count of records") }
            conn.logRead = (id, LogFileReader(files: log.files(), tail: tail), params["follow"]?.bool == true)
            pumpLogs(conn)
        case "delete", "shutdown":
            let force = params["force"]?.bool == true
            if method == "shutdown" && exit == nil && !force { throw .precondition("container is running; use force") }
            do { try delete(force: force || method == "shutdown") } catch {
                // Forced: the init is reaped by now, so the shim goes anyway and says why the
                // runtime's delete failed (its caller cleans up after the runtime).
                guard force, exit != nil, error.code == "runtime-error" else { throw error }
                io.closeAll()
                log.close()
                removeState()
                conn.fail(id, error.code, error.description)
                finish()
                return
            }
            conn.reply(id, .object([]))
            finish()
        default:
            throw RequestError(code: "unknown-method", description: "unknown method \(method)")
        }
    }

    func stateJSON() -> JSONValue {
        var current = status.rawValue
        if exit == nil, let text = try? runtime.run(["state", options.id]),
           let state = try? JSONValue.parse(text), let s = state["status"]?.string {
            current = s
        }
        var members: [(String, JSONValue)] = [("id", .string(options.id)), ("pid", .number(Double(initPid))),
                                              ("status", .string(current)), ("bundle", .string(options.bundle)),
                                              ("terminal", .bool(io.isTerminal))]
        if let exit { members.append(("exit", exit.json)) }
        return .object(members)
    }

    /// A signal as a number or a name (`9`, `KILL`, `SIGKILL`), handed to the runtime as is.
    private func signalParam(_ params: JSONValue) throws(RequestError) -> String {
        guard let value = params["signal"] else { return "SIGTERM" }
        if let n = value.int, (1...64).contains(n) { return String(n) }
        if let s = value.string, !s.isEmpty, s.count <= 16, s.allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "+" || $0 == "-" }),
           !s.hasPrefix("-") {
            return s
        }
        throw .params("params.signal: a signal number or name")
    }

    private func runtimeCall(_ args: [String]) throws(RequestError) {
        do { try runtime.run(args) } catch { throw RequestError(code: "runtime-error", description: error.description) }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(RequestError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n > 0 { done += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, 1000)
                if p.revents == 0 { throw .precondition("stdin is full: the process is not reading") }
                continue
            }
            throw .precondition("stdin closed")
        }
    }

    /// `exec`: the process spec (params.process) goes to the runtime as a file; the reply
    /// comes when the process exits, with its own exit code, output streamed as events before.
    private func exec(_ params: JSONValue, _ id: JSONValue, _ conn: Connection) throws(RequestError) {
        guard exit == nil, status == .running else { throw .precondition("container is not running") }
        guard case .object(var process)? = params["process"], process.contains(where: { $0.0 == "args" }) else {
            throw .params("params.process: an OCI process object with args")
        }
        let tty = params["tty"]?.bool == true
        process.removeAll { $0.0 == "terminal" }
        process.append(("terminal", .bool(tty)))
        execCount += 1
        let prefix = "\(options.stateDir)/exec-\(execCount)"
        do {
            let text = Array(JSONValue.object(process).serialized.utf8)
            let fd = open(prefix + ".json", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ShimError.sys("write exec process") }
            _ = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            let execIO = tty ? try ProcessIO.terminal(socketPath: prefix + ".sock") : try ProcessIO.pipes(stdin: params["stdin"]?.bool == true)
            var args = ["exec", "--process", prefix + ".json", "--detach", "--pid-file", prefix + ".pid"]
            if let socket = execIO.consoleSocketPath { args += ["--console-socket", socket] }
            do {
                try runtime.run(args + [options.id], stdin: execIO.childStdin, stdout: execIO.childStdout, stderr: execIO.childStderr)
                try execIO.runtimeFinished(succeeded: true)
            } catch {
                try? execIO.runtimeFinished(succeeded: false)
                execIO.closeAll()
                throw error
            }
            guard let pid = TextFile.pid(prefix + ".pid") else {
                execIO.closeAll()
                throw ShimError("the runtime wrote no exec pid file")
            }
            let session = ExecSession(number: execCount, io: execIO, conn: conn, requestID: id, filePrefix: prefix)
            session.pid = pid
            execs[pid] = session
            if execIO.stdinFD >= 0 { conn.stdinTarget = execIO }
            watchOutput(execIO.stdoutFD, stream: "stdout", exec: session)
            if execIO.stderrFD >= 0 { watchOutput(execIO.stderrFD, stream: "stderr", exec: session) }
            conn.send(.object([("event", .string("started")), ("pid", .number(Double(pid)))]))
            // It may have exited before it was ours to reap: SIGCHLD is pending then, and the loop reaps it.
        } catch {
            unlink(prefix + ".json"); unlink(prefix + ".pid")
            throw RequestError(code: "runtime-error", description: "\(error)")
        }
    }

    /// Sends a `logs` reader's next records while the client keeps up; at the end, the reply
    /// (or, when following, new records as they are written until the container exits).
    func pumpLogs(_ conn: Connection) {
        guard let read = conn.logRead else { return }
        while !conn.closed && conn.pending < Connection.lowWater {
            let batch = read.cursor.next(budget: 256 * 1024)
            if batch.isEmpty {
                read.cursor.close()
                conn.logRead = nil
                if read.follow && exit == nil {
                    // The file is read: what follows is live (a client holding a tail window sends it now).
                    conn.send(bytes: Array("{\"event\":\"caught-up\"}\n".utf8))
                    conn.followID = read.id
                } else {
                    conn.reply(read.id, .object([("end", .string(exit == nil ? "eof" : "exited"))]))
                }
                return
            }
            var bytes: [UInt8] = []
            for record in batch { bytes.append(contentsOf: Shim.logEvent(record)) }
            conn.send(bytes: bytes)
        }
    }

    /// `<runtime> delete`; with force a live container is killed and reaped first.
    func delete(force: Bool) throws(RequestError) {
        if exit == nil {
            guard force else { throw .precondition("container is \(status.rawValue); stop it or use force") }
            _ = try? runtime.run(["kill", "--all", options.id, "KILL"])
            // Our own child until we reap it, so the pid cannot be another's: if the runtime's
            // kill did not happen (it was killed itself), this one still does.
            kill(initPid, SIGKILL)
            var status: Int32 = 0
            while waitpid(initPid, &status, 0) < 0 && errno == EINTR {}
            reapChildren()
            if exit == nil { initExited(status) }
        }
        do { try runtime.run(["delete", "--force", options.id]) } catch {
            throw RequestError(code: "runtime-error", description: error.description)
        }
        io.closeAll()
        log.close()
        removeState()
    }
}

/// A request that cannot be served, with the protocol's error code.
struct RequestError: Error, CustomStringConvertible {
    let code: String
    let description: String

    static func precondition(_ message: String) -> RequestError { RequestError(code: "failed-precondition", description: message) }
    static func params(_ message: String) -> RequestError { RequestError(code: "invalid-params", description: message) }
}
