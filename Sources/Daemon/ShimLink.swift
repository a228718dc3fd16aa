import CLinux
import Foundation
import RPC
import API
import Wire

/// How the daemon reaches a container's shim: starting it (sshim prints the pid or the
/// error), and one request per connection to its control socket.
struct ShimLink: Sendable {
    let stateDir: String
    var socketPath: String { stateDir + "/control.sock" }

    /// Runs sshim; returns the container's pid once the runtime has created it.
    static func start(binary: String, arguments: [String]) throws -> Int {
        let out = try execute(binary, arguments)
        guard out.code == 0, let pid = Int(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            let message = out.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw apiError(.object([("message", .string(message.hasPrefix("sshim: ") ? String(message.dropFirst(7)) : message))]))
        }
        return pid
    }

    /// Sends one request and returns its result (lines before it go to `onEvent`).
    @discardableResult
    /// `onEvent` returning false ends the call (its client has gone).
    func call(_ method: String, _ params: JSONValue = .object([]), onEvent: ((JSONValue) -> Bool)? = nil) throws -> JSONValue {
        let socket: LineSocket
        do { socket = try LineSocket.connect(socketPath) } catch { throw APIError(.unavailable, "the container's shim is not reachable: \(error)") }
        defer { socket.close() }
        socket.write(.object([("id", .number(1)), ("method", .string(method)), ("params", params)]))
        while let message = socket.readValue() {
            if message["id"] == nil {
                if onEvent?(message) == false { throw APIError(.unavailable, "the client has gone") }
                continue
            }
            if let error = message["error"] {
                throw ShimLink.apiError(error)
            }
            return message["result"] ?? .object([])
        }
        throw APIError(.unavailable, "the shim closed the connection")
    }

    /// A shim's error reply as the API's: the runtime's words, classified as docker does for
    /// a command that does not exist (127) or cannot be run (126).
    static func apiError(_ error: JSONValue) -> APIError {
        let message = error["message"]?.string ?? "shim error"
        let lower = message.lowercased()
        if lower.contains("no such file or directory") || lower.contains("executable file not found") || lower.contains("not found in $path") {
            if lower.contains("exec") { return APIError(.commandNotFound, message) }
        }
        if lower.contains("permission denied") && lower.contains("exec") { return APIError(.commandNotExecutable, message) }
        switch error["code"]?.string {
        case "invalid-params": return APIError(.invalidParams, message)
        case "failed-precondition": return APIError(.failedPrecondition, message)
        default: return APIError(.runtimeError, message)
        }
    }

    /// The exit record the shim wrote, if the container has exited.
    func exitRecord() -> ExitStatus? {
        guard let data = FileManager.default.contents(atPath: stateDir + "/exit"), let value = try? JSONValue.parse(Array(data)) else { return nil }
        return ShimLink.exitStatus(value)
    }

    /// The shim's exit record (`{"code","signal"?,"oomKilled","time"}`) as the API's.
    static func exitStatus(_ value: JSONValue) -> ExitStatus? {
        guard let code = value["code"]?.int else { return nil }
        return ExitStatus(code: code, signal: value["signal"]?.int, oomKilled: value["oomKilled"]?.bool ?? false, time: value["time"]?.string)
    }

    var isAlive: Bool { (try? call("state")) != nil }
}

/// What a helper program printed and how it ended.
struct ProgramOutput {
    let stdout: String
    let stderr: String
    let code: Int32
}

/// Runs a program to completion with output in temporary files (a shim keeps nothing of ours
/// open, so no pipe is held by a process that outlives the call). `input` becomes its stdin
/// (else /dev/null); `env` replaces the daemon's environment.
func execute(_ path: String, _ args: [String], input: [UInt8]? = nil, env: [String]? = nil) throws -> ProgramOutput {
    let base = NSTemporaryDirectory() + "scontainerd-\(UUID().uuidString)"
    let out = open(base + ".out", O_RDWR | O_CREAT | O_CLOEXEC, 0o600), err = open(base + ".err", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    defer { close(out); close(err); unlink(base + ".out"); unlink(base + ".err") }
    var inFD: Int32 = -1
    if let input {
        inFD = open(base + ".in", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        unlink(base + ".in")
        guard inFD >= 0, input.withUnsafeBytes({ write(inFD, $0.baseAddress, $0.count) }) == input.count else {
            if inFD >= 0 { close(inFD) }
            throw APIError.internal("write the input of \(path): \(String(cString: strerror(errno)))")
        }
        lseek(inFD, 0, SEEK_SET)
    }
    defer { if inFD >= 0 { close(inFD) } }
    var argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var envp: [UnsafeMutablePointer<CChar>?] = (env ?? []).map { strdup($0) } + [nil]
    defer { envp.forEach { free($0) } }
    let pid = env == nil ? cl_spawn_env(path, &argv, environ, nil, inFD, out, err) : cl_spawn_env(path, &argv, &envp, nil, inFD, out, err)
    guard pid > 0 else { throw APIError.internal("spawn \(path): \(String(cString: strerror(errno)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    func text(_ fd: Int32) -> String {
        lseek(fd, 0, SEEK_SET)
        return String(decoding: FileHandle(fileDescriptor: fd, closeOnDealloc: false).readDataToEndOfFile(), as: UTF8.self)
    }
    return ProgramOutput(stdout: text(out), stderr: text(err), code: cl_wifexited(status) != 0 ? cl_wexitstatus(status) : 128 + cl_wtermsig(status))
}
