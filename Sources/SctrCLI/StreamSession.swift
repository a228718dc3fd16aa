import CLinux
import Foundation
import RPC

/// The client's end of an attach or exec tunnel: output events to stdout/stderr, our stdin
/// (when asked) as `stdin` requests, the terminal in raw mode and its size sent along for a
/// tty. Returns the process's exit code.
struct StreamSession {
    let socket: LineSocket
    let tty: Bool
    let stdin: Bool
    /// False when `sendTerminalSize` already ran (before the container started).
    var sizeNotSent = true

    /// Sends our terminal's new size whenever it changes. Polled (4 times a second) on its own
    /// thread rather than caught as SIGWINCH: a signal handler is no place for socket writes.
    private func followTerminalSize() {
        let socket = self.socket
        Thread.detachNewThread {
            var last = winsize()
            _ = cl_ioctl_ptr(0, UInt(TIOCGWINSZ), &last)
            while !socket.closed {
                usleep(250_000)
                var now = winsize()
                guard cl_ioctl_ptr(0, UInt(TIOCGWINSZ), &now) == 0, now.ws_row != last.ws_row || now.ws_col != last.ws_col else { continue }
                last = now
                socket.write(["id": "resize", "method": "resize", "params": ["rows": Int(now.ws_row), "cols": Int(now.ws_col)]])
            }
        }
    }

    /// Tells the process our terminal's size; waiting for the answer lets `run` send it before
    /// the container starts, so even its first `stty size` sees it.
    func sendTerminalSize(waitForReply: Bool) {
        guard tty, isatty(0) != 0 else { return }
        var size = winsize()
        guard cl_ioctl_ptr(0, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0 else { return }
        socket.write(["id": "resize", "method": "resize", "params": ["rows": Int(size.ws_row), "cols": Int(size.ws_col)]])
        while waitForReply, let message = socket.readJSON(), message["id"] as? String != "resize" {}
    }

    /// Relays until the exit event (attach) or the reply to `requestID` (exec).
    func relay(untilReplyTo requestID: Int?) -> Int32 {
        var saved = [UInt8](repeating: 0, count: 256)
        let raw = tty && isatty(0) != 0 && cl_raw_tty(0, &saved, saved.count) == 0
        defer { if raw { saved.withUnsafeBytes { _ = tcsetattr(0, TCSANOW, $0.bindMemory(to: termios.self).baseAddress!) } } }
        if sizeNotSent { sendTerminalSize(waitForReply: false) }
        if tty, isatty(0) != 0 { followTerminalSize() }
        if stdin {
            let socket = self.socket, tty = self.tty
            Thread.detachNewThread {
                var buf = [UInt8](repeating: 0, count: 32 * 1024)
                var n = 0
                while true {
                    let got = read(0, &buf, buf.count)
                    if got <= 0 { break }
                    n += 1
                    socket.write(["id": "in-\(n)", "method": "stdin", "params": ["data": Data(buf[0..<got]).base64EncodedString()]])
                }
                // End of our input: a pipe is closed; a terminal session just keeps going.
                if !tty { socket.write(["id": "in-eof", "method": "closeStdin"]) }
            }
        }
        while let message = socket.readJSON() {
            if message["event"] as? String == "output", let data = (message["data"] as? String).flatMap({ Data(base64Encoded: $0) }) {
                (message["stream"] as? String == "stderr" ? FileHandle.standardError : FileHandle.standardOutput).write(data)
                continue
            }
            if message["event"] as? String == "exit" {
                return Int32((message["exit"] as? [String: Any])?["code"] as? Int ?? 1)
            }
            if let requestID, message["id"] as? Int == requestID {
                if let error = message["error"] as? [String: Any] {
                    FileHandle.standardError.write(Data("sctr: \(error["message"] ?? "exec failed")\n".utf8))
                    return 126
                }
                return Int32((message["result"] as? [String: Any])?["exitCode"] as? Int ?? 1)
            }
            if let error = message["error"] as? [String: Any], message["id"] as? Int != nil {
                FileHandle.standardError.write(Data("sctr: \(error["message"] ?? "attach failed")\n".utf8))
                return 125
            }
        }
        return 125
    }
}

/// `sctr exec [-i] [-t] [-e K=V] [-u USER] [-w DIR] ID CMD...`.
struct ExecCommand {
    let client: Client

    func run(_ args: [String]) throws -> Int32 {
        var rest = args[...]
        var params: [String: Any] = [:]
        var env: [String] = []
        var interactive = false, tty = false
        while let a = rest.first, a.hasPrefix("-") {
            rest.removeFirst()
            switch a {
            case "-i": interactive = true
            case "-t": tty = true
            case "-it", "-ti": interactive = true; tty = true
            case "-e": env.append(rest.popFirst() ?? "")
            case "-u": params["user"] = rest.popFirst()
            case "-w": params["workdir"] = rest.popFirst()
            default: throw client.usage("exec [-i] [-t] [-e K=V] [-u USER] [-w DIR] ID CMD...")
            }
        }
        guard let id = rest.popFirst(), !rest.isEmpty else { throw client.usage("exec [-i] [-t] ID CMD...") }
        params["id"] = id
        params["cmd"] = Array(rest)
        params["tty"] = tty
        params["stdin"] = interactive
        params["env"] = env
        let socket = try client.connect()
        defer { socket.close() }
        socket.write(["id": 1, "method": "container.exec", "params": params])
        return StreamSession(socket: socket, tty: tty, stdin: interactive).relay(untilReplyTo: 1)
    }
}

/// `sctr run` and `sctr create`: options into container.create, then (for run) attach, start,
/// relay and exit with the container's code; `--rm` removes it afterwards.
struct RunCommand {
    let client: Client
    let create: Bool

    func run(_ args: [String]) throws -> Int32 {
        var rest = args[...]
        var options: [String: Any] = [:]
        var env: [String] = [], volumes: [String] = [], capAdd: [String] = [], capDrop: [String] = []
        var detach = false, interactive = false, tty = false, remove = false
        func value(_ flag: String) throws -> String {
            guard let v = rest.popFirst() else { throw client.usage("run: \(flag) needs a value") }
            return v
        }
        while let a = rest.first, a.hasPrefix("-") {
            rest.removeFirst()
            switch a {
            case "-d", "--detach": detach = true
            case "-i", "--interactive": interactive = true
            case "-t", "--tty": tty = true
            case "-it", "-ti": interactive = true; tty = true
            case "--rm": remove = true
            case "--name": options["name"] = try value(a)
            case "-e", "--env": env.append(try value(a))
            case "-v", "--volume": volumes.append(try value(a))
            case "-w", "--workdir": options["workdir"] = try value(a)
            case "-u", "--user": options["user"] = try value(a)
            case "--hostname", "-h": options["hostname"] = try value(a)
            case "-m", "--memory":
                let text = try value(a)
                guard let bytes = RunCommand.bytes(text) else { throw client.usage("run: -m \(text): a size like 64m") }
                options["memory"] = bytes
            case "--cpus": options["cpus"] = Double(try value(a)) ?? 0
            case "--pids-limit": options["pidsLimit"] = Int(try value(a)) ?? 0
            case "--read-only": options["readOnly"] = true
            case "--cap-add": capAdd.append(try value(a))
            case "--cap-drop": capDrop.append(try value(a))
            case "--restart": options["restart"] = try value(a)
            case "--entrypoint": options["entrypoint"] = [try value(a)]
            case "--cgroup-parent": options["cgroupParent"] = try value(a)
            default: throw client.usage("run: unknown flag \(a)")
            }
        }
        guard let image = rest.popFirst() else { throw client.usage("run [OPTIONS] IMAGE [CMD...]") }
        options["image"] = image
        if !rest.isEmpty { options["cmd"] = Array(rest) }
        if !env.isEmpty { options["env"] = env }
        if !volumes.isEmpty { options["volumes"] = volumes }
        if !capAdd.isEmpty { options["capAdd"] = capAdd }
        if !capDrop.isEmpty { options["capDrop"] = capDrop }
        options["tty"] = tty
        options["stdin"] = interactive
        if remove && detach { options["autoRemove"] = true }
        let created = try client.call("container.create", options)
        let id = created["id"] as? String ?? ""
        if create { print(id); return 0 }
        if detach {
            try client.call("container.start", ["id": id])
            print(id)
            return 0
        }
        // Attach first, so no output is missed, then start.
        let socket = try client.connect()
        defer { socket.close() }
        socket.write(["id": 1, "method": "container.attach", "params": ["id": id]])
        guard let reply = socket.readJSON(), reply["result"] != nil else {
            _ = try? client.call("container.remove", ["id": id, "force": true])
            throw DaemonError(code: "attach", description: "could not attach to \(id)")
        }
        var session = StreamSession(socket: socket, tty: tty, stdin: interactive)
        session.sendTerminalSize(waitForReply: true)
        session.sizeNotSent = false
        do { try client.call("container.start", ["id": id]) } catch {
            _ = try? client.call("container.remove", ["id": id, "force": true])
            throw error
        }
        let code = session.relay(untilReplyTo: nil)
        // The daemon records the exit on its own thread; wait for it before removing.
        _ = try? client.call("container.wait", ["id": id])
        if remove { _ = try? client.call("container.remove", ["id": id, "force": true]) }
        return code
    }

    /// "512", "64k", "64m", "1g" in bytes.
    static func bytes(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "b": 1]
        if let last = text.last?.lowercased().first, let unit = units[last] { return Int64(text.dropLast()).map { $0 * unit } }
        return Int64(text)
    }
}
