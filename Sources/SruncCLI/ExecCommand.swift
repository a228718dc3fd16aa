@preconcurrency import Glibc
import OCI
import Runtime

/// `srunc exec [flags] ID [COMMAND ARGS…]` or `--process process.json`, with runc's flags.
enum ExecCommand {
    static let flags: [FlagSpec] = [
        .value("process", "p"), .bool("tty", "t"), .value("console-socket"), .bool("detach", "d"),
        .value("pid-file"), .value("env", "e"), .value("cwd"), .value("user", "u"), .value("additional-gids", "g"),
        .value("cap", "c"), .bool("no-new-privs"), .value("preserve-fds"), .value("apparmor"),
        .value("process-label"), .bool("ignore-paused"), .value("cgroup"),
    ]

    static func run(_ rest: [String], store: StateStore) throws -> Int32 {
        let a = try ParsedArguments(rest[...], flags: flags, stopAtPositional: true)
        guard let id = a.positionals.first else { throw UsageError("\"exec\" requires a container id") }
        let executor = Executor(store: store)
        var process: Process
        var record: ContainerRecord?
        if let path = a.value("process") {
            guard let bytes = Files.read(path) else { throw RuntimeError.sys("open \(path)") }
            process = try JSON.decode(Process.self, from: bytes, what: path)
        } else {
            guard a.positionals.count > 1 else { throw UsageError("exec requires a command or --process") }
            record = try store.load(id)
            process = Executor.baseProcess(record!)
            process.args = Array(a.positionals.dropFirst())
            process.terminal = a.flag("tty")
            for kv in a.all("env") {
                let key = kv.split(separator: "=", maxSplits: 1).first.map(String.init) ?? kv
                process.env = (process.env ?? []).filter { !$0.hasPrefix(key + "=") } + [kv]
            }
            if let cwd = a.value("cwd") { process.cwd = cwd }
            if let user = a.value("user") {
                let parts = user.split(separator: ":", maxSplits: 1)
                guard let uid = UInt32(parts[0]), parts.count == 1 || UInt32(parts[1]) != nil else {
                    throw UsageError("--user takes uid[:gid] as numbers: \(user)")
                }
                process.user = User(uid: uid, gid: parts.count > 1 ? UInt32(parts[1])! : 0)
            }
            let gids = try a.all("additional-gids").map { g -> UInt32 in
                guard let n = UInt32(g) else { throw UsageError("invalid --additional-gids value: \(g)") }
                return n
            }
            if !gids.isEmpty { process.user.additionalGids = gids }
            let caps = a.all("cap")
            if !caps.isEmpty {
                var c = process.capabilities ?? OCI.Capabilities()
                c.bounding = (c.bounding ?? []) + caps
                c.effective = (c.effective ?? []) + caps
                c.permitted = (c.permitted ?? []) + caps
                process.capabilities = c
            }
            if a.flag("no-new-privs") { process.noNewPrivileges = true }
        }
        var opts = ExecOptions(id: id, process: process)
        opts.detach = a.flag("detach")
        opts.pidFile = a.value("pid-file")
        opts.consoleSocket = a.value("console-socket")
        opts.ignorePaused = a.flag("ignore-paused")
        opts.subCgroups = a.all("cgroup")
        opts.preserveFDs = try Srunc.preserveFDs(a)
        return try executor.exec(opts, known: record)
    }
}
