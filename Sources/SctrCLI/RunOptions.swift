import API
import OCI
import ArgumentParser
import Foundation

/// A byte size as docker writes it: `512`, `64k`, `64m`, `1g` (case-insensitive, `b` optional).
struct ByteSize: ExpressibleByArgument {
    let bytes: Int64
    init?(argument: String) {
        var text = argument.lowercased()
        if text.count > 1 && text.hasSuffix("b") { text.removeLast() }
        let units: [Character: Int64] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40]
        var scale: Int64 = 1
        if let last = text.last, let unit = units[last] { scale = unit; text.removeLast() }
        guard let n = Int64(text), n >= 0, n <= Int64.max / scale else { return nil }
        bytes = n * scale
    }
    static var defaultValueDescription: String { "bytes" }
}

/// The flags `run` and `create` share: what becomes container.create's params.
struct ContainerOptions: ParsableArguments {
    @Option(help: "Assign a name to the container.") var name: String?
    @Option(name: .shortAndLong, help: "Set an environment variable (KEY=VALUE, or KEY for the host's value).") var env: [String] = []
    @Option(help: "Read environment variables from a file.") var envFile: [String] = []
    @Option(name: .shortAndLong, help: "Bind a host path or a named volume (SRC:/DST[:ro]).") var volume: [String] = []
    @Option(name: .shortAndLong, help: "Working directory inside the container.") var workdir: String?
    @Option(name: .shortAndLong, help: "Username or UID (format: <name|uid>[:<group|gid>]).") var user: String?
    @Option(name: [.customShort("h"), .long], help: "Container host name.") var hostname: String?
    @Option(name: .shortAndLong, help: "Memory limit (e.g. 64m).") var memory: ByteSize?
    @Option(help: "Number of CPUs.") var cpus: Double?
    @Option(help: "Tune container pids limit (set -1 for unlimited).") var pidsLimit: Int64?
    @Flag(help: "Mount the container's root filesystem as read only.") var readOnly = false
    @Option(help: "Add Linux capabilities.") var capAdd: [String] = []
    @Option(help: "Drop Linux capabilities.") var capDrop: [String] = []
    @Flag(help: "Give extended privileges to this container.") var privileged = false
    @Flag(name: .customLong("init"), help: "Run an init inside the container that forwards signals and reaps processes.") var runInit = false
    @Option(help: "Command to run to check health (a shell command).") var healthCmd: String?
    @Option(help: "Time between running the check (ms|s|m|h).") var healthInterval: String?
    @Option(help: "Maximum time to allow one check to run (ms|s|m|h).") var healthTimeout: String?
    @Option(help: "Start period for the container to initialize before failures count (ms|s|m|h).") var healthStartPeriod: String?
    @Option(help: "Consecutive failures needed to report unhealthy.") var healthRetries: Int?
    @Flag(help: "Disable any container-specified HEALTHCHECK.") var noHealthcheck = false
    @Option(help: "Security options: seccomp=unconfined, seccomp=PROFILE.json (linux.seccomp's shape), no-new-privileges[=true|false].")
    var securityOpt: [String] = []
    @Option(help: "Restart policy: no, on-failure[:max-retries], always, unless-stopped.") var restart: String?
    @Option(help: "Overwrite the default ENTRYPOINT of the image ('' clears it).") var entrypoint: String?
    @Option(help: "Parent cgroup for the container.") var cgroupParent: String?
    @Option(name: [.customShort("l"), .long], help: "Set metadata on a container (KEY=VALUE).") var label: [String] = []
    @Option(name: [.long, .customLong("net")], help: "Connect a container to a network (bridge, none, host, container:ID or a name; repeatable).")
    var network: [String] = []
    @Option(name: [.long, .customLong("net-alias")], help: "Add a network-scoped alias for the container.") var networkAlias: [String] = []
    @Option(name: .shortAndLong, help: "Publish a container's port(s) to the host ([ip:][hostPort:]containerPort[/tcp|udp]).") var publish: [String] = []
    @Flag(name: [.customShort("P"), .long], help: "Publish all exposed ports to random ports.") var publishAll = false
    @Option(help: "IPv4 address (e.g., 172.30.100.104).") var ip: String?
    @Option(help: "Set custom DNS servers.") var dns: [String] = []
    @Option(help: "Set custom DNS search domains.") var dnsSearch: [String] = []
    @Option(help: "Set DNS options.") var dnsOption: [String] = []
    @Option(help: "Add a custom host-to-IP mapping (host:ip).") var addHost: [String] = []
    @Flag(name: .shortAndLong, help: "Keep STDIN open.") var interactive = false
    @Flag(name: .shortAndLong, help: "Allocate a pseudo-TTY.") var tty = false
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The image, then the command and its arguments.", valueName: "IMAGE [COMMAND] [ARG...]"))
    var words: [String] = []

    /// The image and command: everything from the first word that is not a flag.
    func imageAndCommand() throws -> (String, [String]) {
        var rest = words[...]
        if rest.first == "--" { rest.removeFirst() }
        guard let image = rest.popFirst() else { throw ValidationError("\"run\" and \"create\" require at least 1 argument: IMAGE [COMMAND] [ARG...]") }
        if image.hasPrefix("-") && words.first != "--" { throw ValidationError("unknown flag: \(image)") }
        return (image, Array(rest))
    }

    func validate() throws {
        _ = try imageAndCommand()
        if let c = cpus, !(c > 0) { throw ValidationError("--cpus: the number of CPUs must be positive, got \(c)") }
        if let r = restart { do { _ = try RestartPolicy(parsing: r) } catch { throw ValidationError("--restart: \(error)") } }
        for l in label where l.split(separator: "=", maxSplits: 1).first.map({ $0.isEmpty }) ?? true { throw ValidationError("--label: \(l) is not KEY[=VALUE]") }
        for f in envFile where !FileManager.default.isReadableFile(atPath: f) { throw ValidationError("--env-file: cannot read \(f)") }
        for p in publish { do { _ = try PortBinding.parse(p) } catch { throw ValidationError("invalid argument \"\(p)\" for \"-p, --publish\" flag: \(error)") } }
    }

    /// The health check the flags describe: `--no-healthcheck` is `NONE`; a timing flag alone
    /// needs the command too (the image's check is replaced whole).
    func healthcheck() throws -> HealthcheckOptions? {
        if noHealthcheck { return HealthcheckOptions(test: ["NONE"]) }
        guard let healthCmd else {
            if healthInterval != nil || healthTimeout != nil || healthStartPeriod != nil || healthRetries != nil {
                throw ValidationError("--health-interval, --health-timeout, --health-start-period and --health-retries go with --health-cmd")
            }
            return nil
        }
        var h = HealthcheckOptions(test: ["CMD-SHELL", healthCmd])
        h.interval = try healthInterval.map { try Duration.seconds($0, flag: "--health-interval") }
        h.timeout = try healthTimeout.map { try Duration.seconds($0, flag: "--health-timeout") }
        h.startPeriod = try healthStartPeriod.map { try Duration.seconds($0, flag: "--health-start-period") }
        h.retries = healthRetries
        return h
    }

    func createOptions() throws -> CreateOptions {
        let (image, command) = try imageAndCommand()
        var o = CreateOptions(image: image)
        o.name = name
        o.cmd = command.isEmpty ? nil : command
        o.entrypoint = entrypoint.map { $0.isEmpty ? [] : [$0] }
        let environment = try EnvList.entries(files: envFile, flags: env)
        o.env = environment.isEmpty ? nil : environment
        o.workdir = workdir
        o.user = user
        o.hostname = hostname
        o.memory = memory?.bytes
        o.cpus = cpus
        o.pidsLimit = pidsLimit
        o.readOnly = readOnly ? true : nil
        o.volumes = volume.isEmpty ? nil : volume
        o.capAdd = capAdd.isEmpty ? nil : capAdd
        o.capDrop = capDrop.isEmpty ? nil : capDrop
        o.privileged = privileged ? true : nil
        o.`init` = runInit ? true : nil
        o.healthcheck = try healthcheck()
        try SecurityOptions.apply(securityOpt, to: &o)
        o.restart = try restart.map { try RestartPolicy(parsing: $0) }
        o.cgroupParent = cgroupParent
        o.tty = tty
        o.stdin = interactive
        o.labels = LabelFlags.parse(label)
        o.networks = network.isEmpty ? nil : network
        o.networkAliases = networkAlias.isEmpty ? nil : networkAlias
        o.publish = publish.isEmpty ? nil : try publish.flatMap { try PortBinding.parse($0) }
        o.publishAll = publishAll ? true : nil
        o.ip = ip
        o.dns = dns.isEmpty ? nil : dns
        o.dnsSearch = dnsSearch.isEmpty ? nil : dnsSearch
        o.dnsOptions = dnsOption.isEmpty ? nil : dnsOption
        o.addHosts = addHost.isEmpty ? nil : addHost
        return o
    }
}

/// Go's durations as docker's flags take them: `500ms`, `2s`, `1m30s`, `1h`.
enum Duration {
    static func seconds(_ text: String, flag: String) throws -> Double {
        var total = 0.0, number = ""
        var rest = Substring(text)
        guard !rest.isEmpty else { throw ValidationError("\(flag): an empty duration") }
        while !rest.isEmpty {
            number = String(rest.prefix { $0.isNumber || $0 == "." })
            rest = rest.dropFirst(number.count)
            let unit = String(rest.prefix { $0.isLetter })
            rest = rest.dropFirst(unit.count)
            guard let n = Double(number), let scale = ["ms": 0.001, "s": 1, "m": 60, "h": 3600][unit] else {
                throw ValidationError("\(flag): \(text) is not a duration (such as 500ms, 2s, 1m30s)")
            }
            total += n * scale
        }
        return total
    }
}

/// `--security-opt` as docker reads it (`=` or `:` after the key).
enum SecurityOptions {
    static func apply(_ options: [String], to o: inout CreateOptions) throws {
        for option in options {
            guard let sep = option.firstIndex(where: { $0 == "=" || $0 == ":" }) ?? (option == "no-new-privileges" ? option.endIndex : nil) else {
                throw ValidationError("--security-opt: \(option) is not KEY=VALUE")
            }
            let key = String(option[..<sep]), value = sep == option.endIndex ? "true" : String(option[option.index(after: sep)...])
            switch key {
            case "seccomp" where value == "unconfined": o.seccompUnconfined = true
            case "seccomp":
                guard let data = FileManager.default.contents(atPath: value) else { throw ValidationError("--security-opt seccomp: cannot read \(value)") }
                do { o.seccompProfile = try JSONDecoder().decode(Seccomp.self, from: data) } catch {
                    throw ValidationError("--security-opt seccomp: \(value) is not a linux.seccomp profile: \(error)")
                }
            case "no-new-privileges":
                guard let on = Bool(value) else { throw ValidationError("--security-opt no-new-privileges: true or false, got \(value)") }
                o.noNewPrivileges = on
            default: throw ValidationError("--security-opt: \(key) is not supported (seccomp, no-new-privileges)")
            }
        }
    }
}

/// `-e` and `--env-file` as docker reads them: `KEY=VALUE`, or `KEY` for the host's value
/// (dropped when the host has none); files first, then flags; `#` lines and blanks skipped.
enum EnvList {
    static func entries(files: [String], flags: [String]) throws -> [String] {
        var lines: [String] = []
        for file in files {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            lines += text.split(separator: "\n").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        return try (lines + flags).compactMap { entry in
            guard let eq = entry.firstIndex(of: "=") else {
                guard !entry.isEmpty else { throw ValidationError("-e: an empty variable name") }
                return ProcessInfo.processInfo.environment[entry].map { entry + "=" + $0 }
            }
            guard eq != entry.startIndex else { throw ValidationError("-e: \(entry) has no variable name") }
            return entry
        }
    }
}

/// `-l KEY=VALUE` (or `KEY`, an empty value) flags as a label set; nil when none; a later
/// value for a key wins.
enum LabelFlags {
    static func parse(_ flags: [String]) -> [String: String]? {
        guard !flags.isEmpty else { return nil }
        return Dictionary(flags.map { l in
            let parts = l.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            return (parts[0], parts.count == 2 ? parts[1] : "")
        }) { _, last in last }
    }
}
