import API
import ArgumentParser
@preconcurrency import Glibc
import Foundation
import Wire

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start one or more created or stopped containers.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Attach to the container's output and forward signals.") var attach = false
    @Flag(name: .shortAndLong, help: "Attach the container's stdin.") var interactive = false
    @Argument(help: "Containers (id, name or unique id prefix).") var containers: [String]

    func validate() throws {
        if containers.isEmpty { throw ValidationError("\"start\" requires at least 1 argument") }
        if (attach || interactive) && containers.count > 1 { throw ValidationError("you cannot start and attach multiple containers at once") }
    }
    func run() throws {
        guard attach || interactive else {
            try forEach(containers) { try global.client.call(Calls.ContainerStart.self, ContainerParams(id: $0)); print($0) }
            return
        }
        let client = global.client
        let info = try daemonCall(code: 1) { try client.call(Calls.ContainerInspect.self, ContainerParams(id: containers[0])) }
        // A created container is attached before it starts; a stopped one gets a new shim at
        // start, so it is attached just after (its first output may precede the attach).
        let again = info.status == .exited
        if again { _ = try daemonCall(code: 1) { try client.call(Calls.ContainerStart.self, ContainerParams(id: info.id)) } }
        throw CLIExit(code: try Attached.run(client: client, id: info.id, tty: info.config.tty == true, stdin: interactive, start: !again))
    }
}

struct Restart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Restart one or more containers (stop, then start).")
    @OptionGroup var global: GlobalOptions
    @Option(name: [.customShort("t"), .customLong("time")], help: "Seconds to wait before killing the container.") var time: Int = 10
    @Argument(help: "Containers.") var containers: [String]

    func validate() throws {
        if containers.isEmpty { throw ValidationError("\"restart\" requires at least 1 argument") }
        if time < 0 { throw ValidationError("--time must not be negative") }
    }
    func run() throws {
        try forEach(containers) {
            try global.client.call(Calls.ContainerStop.self, StopParams(id: $0, timeout: Double(time)))
            try global.client.call(Calls.ContainerStart.self, ContainerParams(id: $0))
            print($0)
        }
    }
}

struct Attach: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attach", abstract: "Attach to a running container's output (and input), forwarding signals.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Do not attach stdin.") var noStdin = false
    @Option(help: "Proxy received signals to the container.") var sigProxy = true
    @Argument(help: "The container.") var container: String

    func run() throws {
        let client = global.client
        let info = try daemonCall(code: 1) { try client.call(Calls.ContainerInspect.self, ContainerParams(id: container)) }
        throw CLIExit(code: try Attached.run(client: client, id: info.id, tty: info.config.tty == true,
                                             stdin: !noStdin && info.config.stdin == true, start: false, signals: sigProxy))
    }
}

/// An attach session to one container: signals forwarded, its output relayed, started first
/// when asked (`start -a`); the container's exit code.
enum Attached {
    static func run(client: Client, id: String, tty: Bool, stdin: Bool, start: Bool, signals: Bool = true) throws -> Int32 {
        if signals { SignalProxy.start(client: client, id: id) }
        let socket = try daemonCall(code: 1) { try client.connect() }
        defer { socket.close() }
        let session = StreamSession(client: client, socket: socket, tty: tty, stdin: stdin, requestID: 1)
        _ = try daemonCall(code: 1) { try client.call(Calls.ContainerAttach.self, ContainerParams(id: id), on: socket) }
        session.sendTerminalSize(waitForReply: true)
        if start { _ = try daemonCall(code: 1) { try client.call(Calls.ContainerStart.self, ContainerParams(id: id)) } }
        return session.relay(sizeSent: true)
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop one or more running containers (the stop signal, then SIGKILL).")
    @OptionGroup var global: GlobalOptions
    @Option(name: [.customShort("t"), .customLong("time")], help: "Seconds to wait before killing the container.") var time: Int = 10
    @Argument(help: "Containers.") var containers: [String]

    func validate() throws {
        if containers.isEmpty { throw ValidationError("\"stop\" requires at least 1 argument") }
        if time < 0 { throw ValidationError("--time must not be negative") }
    }
    func run() throws {
        try forEach(containers) { try global.client.call(Calls.ContainerStop.self, StopParams(id: $0, timeout: Double(time))); print($0) }
    }
}

struct Kill: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Send a signal (default SIGKILL) to one or more running containers.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "The signal (name or number).") var signal = "KILL"
    @Argument(help: "Containers.") var containers: [String]

    func validate() throws {
        if containers.isEmpty { throw ValidationError("\"kill\" requires at least 1 argument") }
        do { _ = try Signal(parsing: signal) } catch { throw ValidationError("--signal: \(error)") }
    }
    func run() throws {
        let sig = try Signal(parsing: signal)
        try forEach(containers) { try global.client.call(Calls.ContainerKill.self, KillParams(id: $0, signal: sig)); print($0) }
    }
}

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove one or more containers.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Force the removal of a running container (SIGKILL).") var force = false
    @Flag(name: .shortAndLong, help: "Remove anonymous volumes (they always go with the container).") var volumes = false
    @Argument(help: "Containers.") var containers: [String]

    func validate() throws { if containers.isEmpty { throw ValidationError("\"rm\" requires at least 1 argument") } }
    func run() throws {
        try forEach(containers) { try global.client.call(Calls.ContainerRemove.self, RemoveParams(id: $0, force: force)); print($0) }
    }
}

struct Pause: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Pause all processes within one or more containers.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Containers.") var containers: [String]
    func validate() throws { if containers.isEmpty { throw ValidationError("\"pause\" requires at least 1 argument") } }
    func run() throws { try forEach(containers) { try global.client.call(Calls.ContainerPause.self, ContainerParams(id: $0)); print($0) } }
}

struct Unpause: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unpause", abstract: "Unpause all processes within one or more containers.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Containers.") var containers: [String]
    func validate() throws { if containers.isEmpty { throw ValidationError("\"unpause\" requires at least 1 argument") } }
    func run() throws { try forEach(containers) { try global.client.call(Calls.ContainerUnpause.self, ContainerParams(id: $0)); print($0) } }
}

struct Wait: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wait", abstract: "Block until one or more containers stop, then print their exit codes.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Containers.") var containers: [String]
    func validate() throws { if containers.isEmpty { throw ValidationError("\"wait\" requires at least 1 argument") } }
    func run() throws { try forEach(containers) { print(try global.client.call(Calls.ContainerWait.self, ContainerParams(id: $0)).exitCode) } }
}

struct ListContainers: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List containers.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Show all containers (default shows just running).") var all = false
    @Flag(name: .shortAndLong, help: "Only display container ids.") var quiet = false
    @Flag(help: "Don't truncate output.") var noTrunc = false
    @Option(name: .shortAndLong, help: "Filter output (id=, name=, label=, status=, ancestor=).") var filter: [String] = []
    @Option(help: "table, json, or a template ({{.ID}}, {{.Names}}, {{json .}}).") var format: String?

    func run() throws {
        let filters = try Filter.parse(filter)
        let list = try daemonCall { try global.client.call(Calls.ContainerList.self, ListContainersParams(all: all, filters: filters)) }.containers
        if quiet { for c in list { print(noTrunc ? c.id : String(c.id.prefix(12))) }; return }
        let rows = list.map { c in
            Row(c, ["ID": noTrunc ? c.id : String(c.id.prefix(12)), "Names": c.name, "Image": c.image, "Status": ContainerText.status(c),
                    "State": c.status.rawValue, "Command": ContainerText.command(c), "CreatedAt": c.created, "Namespace": c.namespace,
                    "Labels": ContainerText.labels(c.labels), "Ports": (c.network?.ports ?? []).map(\.text).joined(separator: ", "),
                    "Networks": c.network?.mode ?? ""])
        }
        try Listing(format: format).print(rows, columns: [("ID", "CONTAINER ID"), ("Image", "IMAGE"), ("Command", "COMMAND"), ("Status", "STATUS"),
                                                          ("Ports", "PORTS"), ("Names", "NAMES")])
    }
}

/// How a container reads in a table.
enum ContainerText {
    static func status(_ c: ContainerInfo) -> String {
        c.status == .exited ? "exited (\(c.exitCode ?? -1))" : c.status.rawValue
    }
    static func command(_ c: ContainerInfo) -> String {
        let words = (c.config.entrypoint ?? []) + (c.config.cmd ?? [])
        let text = words.joined(separator: " ")
        return "\"" + (text.count > 20 ? text.prefix(19) + "…" : text) + "\""
    }
    static func labels(_ labels: [String: String]) -> String { labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") }
}

/// `--filter key=value` flags as the API's filters.
enum Filter {
    static func parse(_ flags: [String]) throws -> Filters? {
        guard !flags.isEmpty else { return nil }
        var filters: Filters = [:]
        for f in flags {
            guard let eq = f.firstIndex(of: "="), eq != f.startIndex else { throw fail("bad format of filter (expected name=value): \(f)", code: 125) }
            filters[String(f[..<eq]), default: []].append(String(f[f.index(after: eq)...]))
        }
        return filters
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Return low-level information on containers or images (a JSON array).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "container or image (default: a container, else an image).") var type: String?
    @Option(name: .shortAndLong, help: "A template ({{.ID}}, {{json .}}) instead of the JSON array.") var format: String?
    @Argument(help: "Containers or images.") var names: [String]

    func validate() throws {
        if names.isEmpty { throw ValidationError("\"inspect\" requires at least 1 argument") }
        if let t = type, !["container", "image"].contains(t) { throw ValidationError("--type: container or image, got \(t)") }
    }

    func run() throws {
        var found: [String] = []
        var rows: [Row] = []
        try? forEach(names) { name in
            if type != "image" {
                do {
                    let c = try global.client.call(Calls.ContainerInspect.self, ContainerParams(id: name))
                    found.append(Listing.json(c, pretty: true))
                    rows.append(Row(c, ["ID": c.id, "Name": c.name, "Image": c.image, "State": c.status.rawValue, "Namespace": c.namespace]))
                    return
                } catch let e as APIError where e.code == .notFound && type == nil {}
            }
            let i = try global.client.call(Calls.ImageInspect.self, NameParams(name: name))
            found.append(Listing.json(i, pretty: true))
            rows.append(Row(i, ["ID": i.image.digest, "Name": i.image.name, "Namespace": i.image.namespace]))
        }
        if let format {
            let template = try Template(format)
            for row in rows { print(try template.render(row)) }
        } else {
            print("[" + found.map { "\n" + $0.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n") }.joined(separator: ",") + (found.isEmpty ? "]" : "\n]"))
        }
        if found.count < names.count { throw CLIExit(code: 1) }
    }
}

/// `sctr logs`: docker's flags; `--since`/`--until` take RFC 3339, Unix seconds or a
/// duration back from now (`10m`, `1h30m`).
struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Fetch the logs of a container.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Follow log output.") var follow = false
    @Option(name: [.customShort("n"), .long], help: "Number of lines to show from the end of the logs (or all).") var tail: String?
    @Option(help: "Show logs since a time (RFC 3339, Unix seconds, or relative: 42m).") var since: String?
    @Option(help: "Show logs before a time (as --since).") var until: String?
    @Flag(name: .shortAndLong, help: "Show timestamps.") var timestamps = false
    @Option(help: "Resume after this cursor (from --format json output).") var cursor: String?
    @Option(help: "json: one record per line, with its cursor.") var format: String?
    @Argument(help: "The container.") var container: String

    func validate() throws {
        if let tail, tail != "all", Int(tail).map({ $0 < 0 }) ?? true { throw ValidationError("--tail: a number of lines or all, got \(tail)") }
        for (flag, value) in [("--since", since), ("--until", until)] { if let value, TimeArgument.rfc3339(value) == nil { throw ValidationError("\(flag): \(value) is not a time") } }
        if let format, format != "json" { throw ValidationError("--format: json is the only format of logs") }
    }

    func run() throws {
        var params = LogsParams(id: container)
        params.follow = follow
        params.tail = tail.flatMap { Int($0) }
        params.since = since.flatMap(TimeArgument.rfc3339)
        params.until = until.flatMap(TimeArgument.rfc3339)
        params.cursor = cursor
        let client = global.client
        let socket = try daemonCall { try client.connect() }
        defer { socket.close() }
        var out = OutputBuffer()
        defer { out.flush() }
        _ = try daemonCall {
            try client.call(Calls.ContainerLogs.self, params, on: socket) { line in
                // Read straight from the parsed line: a log may hold millions of records.
                guard let record = line.value["log"] else { return }
                if format == "json" {
                    out.add(.stdout, Array(record.serialized.utf8) + [0x0a])
                } else {
                    var bytes = record["log"]?.string.map { Array($0.utf8) } ?? record["b64"]?.string.flatMap { Data(base64Encoded: $0) }.map { Array($0) } ?? []
                    if timestamps { bytes = Array(((record["time"]?.string ?? "") + " ").utf8) + bytes }
                    out.add(record["stream"]?.string == "stderr" ? .stderr : .stdout, bytes)
                }
                if follow && !socket.hasBufferedLine { out.flush() }
            }
        }
    }
}

/// Output gathered into large writes, in order across stdout and stderr.
struct OutputBuffer {
    enum Stream { case stdout, stderr }
    private var stream = Stream.stdout
    private var bytes: [UInt8] = []

    mutating func add(_ to: Stream, _ more: [UInt8]) {
        if to != stream { flush(); stream = to }
        bytes += more
        if bytes.count >= 64 << 10 { flush() }
    }

    mutating func flush() {
        var done = 0
        let fd: Int32 = stream == .stdout ? 1 : 2
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            done += n
        }
        bytes.removeAll(keepingCapacity: true)
    }
}

/// Times as docker's CLI takes them.
enum TimeArgument {
    static func rfc3339(_ text: String) -> String? {
        if Timestamp.parse(text) != nil { return text }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        if let seconds = Double(text), seconds >= 0 {
            return Timestamp.format(seconds: Int64(seconds), nanoseconds: Int64((seconds - seconds.rounded(.down)) * 1e9))
        }
        guard let back = duration(text) else { return nil }
        let nanos = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec) - back
        return Timestamp.format(seconds: nanos / 1_000_000_000, nanoseconds: nanos % 1_000_000_000)
    }

    /// Go's durations: `1h30m`, `10s`, `250ms`, in nanoseconds.
    static func duration(_ text: String) -> Int64? {
        let units: [(String, Double)] = [("ms", 1e6), ("us", 1e3), ("ns", 1), ("h", 3.6e12), ("m", 6e10), ("s", 1e9)]
        var rest = Substring(text)
        var total = 0.0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
            rest = rest.dropFirst(unit.0.count)
            total += value * unit.1
        }
        return Int64(total)
    }
}
