import API
import ArgumentParser
import Foundation
import RPC

/// `sctr run`: create, attach (unless -d), start, relay, and exit with the container's code;
/// `--rm` removes it afterwards.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Create and run a new container from an image.", helpNames: [.long])
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Run in the background and print the container's id.") var detach = false
    @Flag(help: "Remove the container when it exits.") var rm = false
    @Option(help: "Proxy received signals to the container (attached runs).") var sigProxy = true
    @OptionGroup var options: ContainerOptions

    func run() throws {
        let client = global.client
        var params = try options.createOptions()
        // The daemon removes it when it exits, even after a detach (ctrl-p ctrl-q) or our death.
        if rm { params.autoRemove = true }
        let created = try daemonCall(code: 125) { try client.call(Calls.ContainerCreate.self, params) }
        if detach {
            try daemonCall(code: 125) {
                do { try client.call(Calls.ContainerStart.self, ContainerParams(id: created.id)) } catch {
                    _ = try? client.call(Calls.ContainerRemove.self, RemoveParams(id: created.id, force: true))
                    throw error
                }
            }
            print(created.id)
            return
        }
        // Attach first, so no output is missed, then start.
        let socket = try daemonCall(code: 125) { try client.connect() }
        defer { socket.close() }
        if sigProxy { SignalProxy.start(client: client, id: created.id) }
        let session = StreamSession(client: client, socket: socket, tty: options.tty, stdin: options.interactive, requestID: 1)
        let code: Int32
        do {
            _ = try client.call(Calls.ContainerAttach.self, ContainerParams(id: created.id), on: socket)
            session.sendTerminalSize(waitForReply: true)
            try client.call(Calls.ContainerStart.self, ContainerParams(id: created.id))
            code = session.relay(sizeSent: true)
        } catch let e as APIError {
            _ = try? client.call(Calls.ContainerRemove.self, RemoveParams(id: created.id, force: true))
            throw fail(e.message, code: e.code == .commandNotFound ? 127 : e.code == .commandNotExecutable ? 126 : 125)
        }
        if rm {
            // The daemon records the exit on its own thread; wait for it before removing.
            _ = try? client.call(Calls.ContainerWait.self, ContainerParams(id: created.id))
            _ = try? client.call(Calls.ContainerRemove.self, RemoveParams(id: created.id, force: true))
        }
        throw CLIExit(code: code)
    }
}

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a new container (not started); print its id.", helpNames: [.long])
    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: ContainerOptions

    func run() throws {
        let params = try options.createOptions()
        print(try daemonCall(code: 125) { try global.client.call(Calls.ContainerCreate.self, params) }.id)
    }
}

/// `sctr exec`: a process in a running container, with the container's env, cwd and user
/// unless given; exits with its code.
struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exec", abstract: "Run a command in a running container.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Keep STDIN open.") var interactive = false
    @Flag(name: .shortAndLong, help: "Allocate a pseudo-TTY.") var tty = false
    @Option(name: .shortAndLong, help: "Set an environment variable.") var env: [String] = []
    @Option(help: "Read environment variables from a file.") var envFile: [String] = []
    @Option(name: .shortAndLong, help: "Username or UID.") var user: String?
    @Option(name: .shortAndLong, help: "Working directory inside the container.") var workdir: String?
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The container, then the command.", valueName: "CONTAINER COMMAND [ARG...]"))
    var words: [String] = []

    func validate() throws {
        let w = words.first == "--" ? Array(words.dropFirst()) : words
        guard w.count >= 2 else { throw ValidationError("\"exec\" requires at least 2 arguments: CONTAINER COMMAND [ARG...]") }
        if w[0].hasPrefix("-") && words.first != "--" { throw ValidationError("unknown flag: \(w[0])") }
    }

    func run() throws {
        let w = words.first == "--" ? Array(words.dropFirst()) : words
        var params = ExecParams(id: w[0], cmd: Array(w.dropFirst()))
        params.tty = tty
        params.stdin = interactive
        let environment = try EnvList.entries(files: envFile, flags: env)
        params.env = environment.isEmpty ? nil : environment
        params.user = user
        params.workdir = workdir
        params.consoleSize = tty ? StreamSession.terminalSize() : nil
        let client = global.client
        let socket = try daemonCall(code: 126) { try client.connect() }
        defer { socket.close() }
        let session = StreamSession(client: client, socket: socket, tty: tty, stdin: interactive, requestID: 1)
        var early: Int32?
        _ = try daemonCall(code: 126) { try client.call(Calls.ContainerExec.self, params, on: socket) { early = early ?? session.handle($0) } }
        throw CLIExit(code: early ?? session.relay(sizeSent: false))
    }
}
