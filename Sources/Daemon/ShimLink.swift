import CLinux
import Foundation
import RPC

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
            throw RPCError("runtime-error", message.hasPrefix("sshim: ") ? String(message.dropFirst(7)) : message)
        }
        return pid
    }

    /// Sends one request and returns its result (events before it go to `onEvent`).
    @discardableResult
    func call(_ method: String, _ params: [String: Any] = [:], onEvent: (([String: Any]) -> Void)? = nil) throws -> [String: Any] {
        let socket: LineSocket
        do { socket = try LineSocket.connect(socketPath) } catch { throw RPCError("unavailable", "\(error)") }
        defer { socket.close() }
        socket.write(["id": 1, "method": method, "params": params])
        while let message = socket.readJSON() {
            if message["id"] == nil { onEvent?(message); continue }
            if let error = message["error"] as? [String: Any] {
                throw RPCError(error["code"] as? String ?? "runtime-error", error["message"] as? String ?? "shim error")
            }
            return message["result"] as? [String: Any] ?? [:]
        }
        throw RPCError("unavailable", "the shim closed the connection")
    }

    /// The exit record the shim wrote, if the container has exited.
    func exitRecord() -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: stateDir + "/exit") else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
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
/// open, so no pipe is held by a process that outlives the call).
func execute(_ path: String, _ args: [String]) throws -> ProgramOutput {
    let base = NSTemporaryDirectory() + "scontainerd-\(UUID().uuidString)"
    let out = open(base + ".out", O_RDWR | O_CREAT | O_CLOEXEC, 0o600), err = open(base + ".err", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    defer { close(out); close(err); unlink(base + ".out"); unlink(base + ".err") }
    var argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let pid = cl_spawn(path, &argv, nil, out, err)
    guard pid > 0 else { throw RPCError.internal("spawn \(path): \(String(cString: strerror(errno)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    func text(_ fd: Int32) -> String {
        lseek(fd, 0, SEEK_SET)
        return String(decoding: FileHandle(fileDescriptor: fd, closeOnDealloc: false).readDataToEndOfFile(), as: UTF8.self)
    }
    return ProgramOutput(stdout: text(out), stderr: text(err), code: cl_wifexited(status) != 0 ? cl_wexitstatus(status) : 128 + cl_wtermsig(status))
}
