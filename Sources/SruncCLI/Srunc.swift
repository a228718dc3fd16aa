@preconcurrency import Glibc
import OCI
import Runtime

/// srunc's command line: runc's global flags, verbs, verb flags and exit codes.
public enum Srunc {
    public static let version = "0.1.0"

    static let globalFlags: [FlagSpec] = [
        .value("root"), .value("log"), .value("log-format"), .value("criu"), .value("rootless"),
        .bool("debug"), .bool("systemd-cgroup"), .bool("version", "v"), .bool("help", "h"),
    ]

    static let createFlags: [FlagSpec] = [
        .value("bundle", "b"), .value("pid-file"), .value("console-socket"), .value("preserve-fds"),
        .bool("no-pivot"), .bool("no-new-keyring"), .bool("no-subreaper"),
    ]

    /// Runs one invocation and returns the process exit code.
    public static func main(_ argv: [String]) -> Int32 {
        var log = Log()
        do {
            let global = try ParsedArguments(argv.dropFirst(), flags: globalFlags, stopAtPositional: true)
            log.path = global.value("log")
            log.json = global.value("log-format") == "json"
            log.debug = global.flag("debug")
            log.create()
            Log.shared = log
            if let format = global.value("log-format"), format != "json" && format != "text" {
                throw UsageError("invalid log-format: \(format)")
            }
            if global.flag("version") {
                Output.print("srunc version \(version)\nspec: 1.2.0\n")
                return 0
            }
            guard let verb = global.positionals.first, !global.flag("help") else {
                Output.print(usage)
                return global.flag("help") ? 0 : 1
            }
            let rootless = try Rootless.isRootless(global.value("rootless"))
            let store = StateStore(root: global.value("root") ?? Rootless.defaultRoot(rootless: rootless))
            return try dispatch(verb, Array(global.positionals.dropFirst()), store: store, systemd: global.flag("systemd-cgroup"),
                                rootless: rootless)
        } catch let e as UsageError {
            log.error("srunc: \(e.description)")
            return 1
        } catch let e as CommandFailure {
            log.error(e.message)
            return e.code
        } catch {
            log.error("\(error)")
            return 1
        }
    }

    static func dispatch(_ verb: String, _ rest: [String], store: StateStore, systemd: Bool, rootless: Bool = false) throws -> Int32 {
        let lifecycle = Lifecycle(store: store)
        switch verb {
        case "create":
            let a = try ParsedArguments(rest[...], flags: createFlags)
            _ = try Creator(store: store).create(try createOptions(a, systemd: systemd, rootless: rootless))
            return 0
        case "run":
            let a = try ParsedArguments(rest[...], flags: createFlags + [.bool("detach", "d"), .bool("keep")])
            return try Runner(store: store).run(try createOptions(a, systemd: systemd, rootless: rootless), detach: a.flag("detach"), keep: a.flag("keep"))
        case "start":
            try lifecycle.start(try id(from: try ParsedArguments(rest[...], flags: []), verb))
            return 0
        case "state":
            let s = try lifecycle.state(try id(from: try ParsedArguments(rest[...], flags: []), verb))
            Output.print(Output.stateJSON(s))
            return 0
        case "kill":
            let a = try ParsedArguments(rest[...], flags: [.bool("all", "a")])
            let cid = try id(from: a, verb)
            let sig = try Signals.parse(a.positionals.count > 1 ? a.positionals[1] : "SIGTERM")
            try lifecycle.kill(cid, signal: sig, all: a.flag("all"))
            return 0
        case "delete":
            let a = try ParsedArguments(rest[...], flags: [.bool("force", "f")])
            guard !a.positionals.isEmpty else { throw UsageError("delete requires at least 1 argument") }
            for cid in a.positionals { try lifecycle.delete(cid, force: a.flag("force")) }
            return 0
        case "pause", "resume":
            try lifecycle.setPaused(try id(from: try ParsedArguments(rest[...], flags: []), verb), verb == "pause")
            return 0
        case "ps":
            let a = try ParsedArguments(rest[...], flags: [.value("format", "f")], stopAtPositional: true)
            let cid = try id(from: a, verb)
            if a.value("format") == "json" {
                Output.print("[" + (try lifecycle.pids(cid)).map(String.init).joined(separator: ",") + "]\n")
            } else {
                Output.print(try lifecycle.psTable(cid, args: Array(a.positionals.dropFirst())))
            }
            return 0
        case "update":
            let a = try ParsedArguments(rest[...], flags: UpdateFlags.flags)
            try lifecycle.update(try id(from: a, verb), try UpdateFlags.resources(a))
            return 0
        case "events":
            let a = try ParsedArguments(rest[...], flags: [.bool("stats"), .value("interval")])
            var interval: UInt32 = 5000
            if let text = a.value("interval") {
                guard let ms = GoDuration.milliseconds(text), ms > 0 else { throw UsageError("invalid --interval: \(text) (a duration: 100ms, 5s, 1m)") }
                interval = ms
            }
            try lifecycle.events(try id(from: a, verb), once: a.flag("stats"), intervalMilliseconds: interval) { Output.print($0) }
            return 0
        case "features":
            Output.print(String(decoding: try Features.json(version: version), as: UTF8.self))
            return 0
        case "exec":
            do { return try ExecCommand.run(rest, store: store) } catch let e as UsageError { throw e } catch {
                // runc's way, which clients match: `exec failed: …`, exit 255.
                let text = "\(error)"
                throw CommandFailure(message: text.hasPrefix("exec failed: ") ? text : "exec failed: " + text, code: 255)
            }
        case "list":
            return try list(rest, lifecycle)
        case "spec":
            let a = try ParsedArguments(rest[...], flags: [.value("bundle", "b"), .bool("rootless")])
            let path = (a.value("bundle") ?? ".") + "/config.json"
            if access(path, F_OK) == 0 { throw RuntimeError("File \(path) exists. Remove it first") }
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd < 0 { throw RuntimeError.sys("create \(path)") }
            var bytes = Array(DefaultSpec.json.utf8)
            if a.flag("rootless") {
                let base = try JSON.decode(Spec.self, from: bytes, what: "default spec")
                bytes = try JSON.encode(Rootless.spec(from: base, uid: geteuid(), gid: getegid()), pretty: true) + [0x0a]
            }
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            return 0
        default:
            throw UsageError("No help topic for '\(verb)'")
        }
    }

    static func list(_ rest: [String], _ lifecycle: Lifecycle) throws -> Int32 {
        let a = try ParsedArguments(rest[...], flags: [.value("format", "f"), .bool("quiet", "q")])
        let states = lifecycle.list()
        if a.flag("quiet") {
            Output.print(states.map { $0.id + "\n" }.joined())
        } else if a.value("format") == "json" {
            Output.print("[" + states.map(Output.compactJSON).joined(separator: ",") + "]\n")
        } else if let f = a.value("format"), f != "table" {
            throw UsageError("invalid format option")
        } else {
            let rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
                + states.map { [$0.id, String($0.pid), $0.status, $0.bundle, $0.created, $0.owner] }
            Output.print(Output.table(rows))
        }
        return 0
    }

    static func id(from a: ParsedArguments, _ verb: String) throws -> String {
        guard let id = a.positionals.first else { throw UsageError("\"\(verb)\" requires a container id") }
        return id
    }

    static func createOptions(_ a: ParsedArguments, systemd: Bool, rootless: Bool) throws -> CreateOptions {
        var o = CreateOptions(id: try id(from: a, "create"), bundle: Files.absolute(a.value("bundle") ?? "."))
        o.systemdCgroup = systemd
        o.rootless = rootless
        // Both are taken from the caller's cwd, which becomes the bundle below.
        o.pidFile = a.value("pid-file").map(Files.absolute)
        o.consoleSocket = a.value("console-socket").map(Files.absolute)
        // As runc: create works (and its hooks run) in the bundle directory.
        if let bundle = a.value("bundle"), chdir(bundle) != 0 { throw RuntimeError.sys("chdir \(bundle)") }
        o.noPivot = a.flag("no-pivot")
        o.noNewKeyring = a.flag("no-new-keyring")
        o.preserveFDs = try preserveFDs(a)
        return o
    }

    static func preserveFDs(_ a: ParsedArguments) throws -> Int32 {
        guard let p = a.value("preserve-fds") else { return 0 }
        guard let n = Int32(p), n >= 0 else { throw UsageError("invalid --preserve-fds value: \(p)") }
        return n
    }

    static let usage = """
    srunc: an OCI container runtime

    usage: srunc [global options] command [command options] [arguments...]

    commands:
      create   create a container (its process waits for start)
      start    run the user process of a created container
      run      create and start a container
      state    print the state of a container
      kill     send a signal to the container's init (--all: to every process)
      delete   delete a container (--force: even if running)
      pause    freeze every process of a container
      resume   thaw a paused container
      exec     run another process in a running container
      ps       list the container's processes (--format json: their pids)
      update   change resource limits (-r resources.json, or --memory, --cpu-quota, --pids-limit…)
      list     list containers (--format table|json, --quiet)
      spec     write a default config.json into the bundle
      events   print cgroup statistics (--stats: once; else every --interval seconds)
      features print the runtime-spec features document

    global options:
      --root DIR          state directory (default /run/srunc)
      --log FILE          also write errors to FILE
      --log-format FMT    text or json
      --debug             log debug lines
      --systemd-cgroup    accepted for runc compatibility
      --version, -v       print the version

    """
}

/// A failure a verb reports with its own exit code (runc's `exec` exits 255).
struct CommandFailure: Error {
    let message: String
    let code: Int32
}
