import API
import ArgumentParser
@preconcurrency import Glibc
import Foundation

/// sctr: the human-facing client of scontainerd, with docker's grammar (swift-argument-parser:
/// `--flag=value`, `-dit`, `--`, repeated flags, `help`, `--help` on every verb). Errors are
/// reported before anything is sent. Exit codes as docker's: 125 for a usage, client or
/// daemon error on run/create/start, 126 and 127 for a command that cannot run or does not
/// exist, else the container's code; other verbs exit 1 when the daemon refuses.
public struct Sctr: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "sctr",
        abstract: "A docker-like client of scontainerd.",
        version: "sctr 0.2.0 (protocol \(protocolVersion))",
        subcommands: [
            Run.self, Create.self, Start.self, Restart.self, Attach.self, Stop.self, Kill.self, Remove.self, Pause.self, Unpause.self, Wait.self,
            Rename.self, Update.self, Top.self, Stats.self, Copy.self, Diff.self, Export.self, SystemCommand.self, ImageCommand.self,
            ListContainers.self, Inspect.self, Logs.self, Exec.self,
            ListImages.self, Import.self, Pull.self, Push.self, Commit.self, Save.self, Load.self, History.self, Login.self, Logout.self, Tag.self, RemoveImages.self,
            VolumeCommand.self, NetworkCommand.self, Port.self, Events.self, Version.self, Info.self, NamespaceCommand.self,
        ])

    @OptionGroup public var global: GlobalOptions

    public init() {}

    /// Parses and runs; exits with docker's codes.
    public static func main(_ arguments: [String]) -> Never {
        do {
            var command = try parseAsRoot(EmptyValues.split(arguments))
            try command.run()
            Glibc.exit(0)
        } catch let failure as CLIExit {
            Glibc.exit(failure.code)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            FileHandle.standardError.write(Data("sctr: \(message(for: error))\nSee 'sctr --help'.\n".utf8))
            Glibc.exit(125)
        }
    }
}

/// Options every verb takes, before or after its name.
public struct GlobalOptions: ParsableArguments {
    @Option(help: "The daemon's socket (default $SCONTAINERD_SOCKET or /run/scontainerd/scontainerd.sock).")
    var socket: String?
    @Option(help: "The namespace (default $SCONTAINERD_NAMESPACE or default).")
    var namespace: String?
    public init() {}

    var socketPath: String { socket ?? ProcessInfo.processInfo.environment["SCONTAINERD_SOCKET"] ?? "/run/scontainerd/scontainerd.sock" }
    var namespaceName: String { namespace ?? ProcessInfo.processInfo.environment["SCONTAINERD_NAMESPACE"] ?? Request.defaultNamespace }
    var client: Client { Client(socketPath: socketPath, namespace: namespaceName) }
}

/// Ends the process with a code, after the command said why (or had nothing to say).
struct CLIExit: Error {
    let code: Int32
}

/// Prints `sctr: MESSAGE` to stderr and exits with `code`.
func fail(_ message: String, code: Int32) -> CLIExit {
    FileHandle.standardError.write(Data("sctr: \(message)\n".utf8))
    return CLIExit(code: code)
}

/// For verbs that act on several objects (rm, stop, kill, ...): each in turn; a failure is
/// reported and the rest still run, and the exit code is 1 if any failed (docker's way).
func forEach(_ refs: [String], _ body: (String) throws -> Void) throws {
    var failed = false
    for ref in refs {
        do { try body(ref) } catch let e as APIError {
            FileHandle.standardError.write(Data("Error response from daemon: \(e.message)\n".utf8))
            failed = true
        }
    }
    if failed { throw CLIExit(code: 1) }
}

/// Runs a verb's daemon calls, turning a daemon error into `sctr: message` and `code`.
func daemonCall<T>(code: Int32 = 1, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as APIError {
        throw fail(e.message, code: e.code == .commandNotFound ? 127 : e.code == .commandNotExecutable ? 126 : code)
    }
}

/// `--entrypoint=` (an empty value attached with `=`) as `--entrypoint ''`: swift-argument-parser
/// reads an empty attached value as no value and takes the next word instead. Only words
/// before a run/create/exec command's own arguments are rewritten.
enum EmptyValues {
    static let passthroughVerbs: Set<String> = ["run", "create", "exec"]
    /// The short flags of run/create/exec that take a value (the next word is theirs).
    static let shortValueFlags: Set<Character> = ["e", "v", "w", "u", "h", "m", "l"]

    static func split(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var verb: String?
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            i += 1
            if a == "--" { out += arguments[(i - 1)...]; break }
            if a.hasPrefix("--"), a.hasSuffix("="), a.count > 3 {
                out += [String(a.dropLast()), ""]
                continue
            }
            out.append(a)
            if a.hasPrefix("--") {
                // A long option without `=` may take the next word: keep it as it is.
                if !a.contains("="), i < arguments.count, !arguments[i].hasPrefix("-"), !flagNames.contains(a) { out.append(arguments[i]); i += 1 }
            } else if a.hasPrefix("-"), a.count > 1 {
                if let last = a.last, shortValueFlags.contains(last), i < arguments.count { out.append(arguments[i]); i += 1 }
            } else if verb == nil {
                verb = a
            } else if let v = verb, passthroughVerbs.contains(v) {
                out += arguments[i...]
                break
            }
        }
        return out
    }

    /// Long flags that take no value (so the next word is not theirs).
    static let flagNames: Set<String> = ["--detach", "--rm", "--read-only", "--interactive", "--tty", "--all", "--quiet", "--no-trunc",
                                         "--force", "--volumes", "--follow", "--timestamps", "--help", "--version"]
}
