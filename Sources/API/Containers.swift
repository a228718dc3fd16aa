import OCI

/// `{"label":["a=b"],"status":["running"]}`: values of one key match any, keys match all
/// (label values must all match), as docker's `--filter`.
public typealias Filters = [String: [String]]

/// Where a container is in its life. `creating` is seen only while a create runs.
public enum ContainerStatus: String, Codable, Sendable, CaseIterable {
    /// `restarting`: exited, and its restart policy will run it again after a backoff.
    case creating, created, running, paused, restarting, exited
    public var isLive: Bool { self == .running || self == .paused }
    /// What `ps` lists without `-a`, as docker: running, paused and restarting.
    public var isListed: Bool { isLive || self == .restarting }
}

/// A restart policy: what the daemon does when a container exits on its own.
public struct RestartPolicy: Codable, Sendable, Equatable {
    /// `unless-stopped` is `always` but for a container stopped on purpose: this daemon restarts
    /// none of those (nor any container when it starts again), so the two act the same here.
    public enum Name: String, Codable, Sendable, CaseIterable { case no, onFailure = "on-failure", always, unlessStopped = "unless-stopped" }
    public var name: Name
    /// With `on-failure`: at most this many restarts (0: no limit).
    public var maxRetries: Int?

    public init(name: Name, maxRetries: Int? = nil) { self.name = name; self.maxRetries = maxRetries }

    /// Docker's spelling: `no`, `on-failure[:N]`, `always`, `unless-stopped`.
    public init(parsing text: String) throws(APIError) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let name = Name(rawValue: String(parts[0])) else { throw .params("restart: \(ReferenceError.shown(text)) is not no, on-failure[:N], always or unless-stopped") }
        self.name = name
        if parts.count == 2 {
            guard name == .onFailure, let n = Int(parts[1]), n >= 0 else { throw .params("restart: a retry count goes with on-failure only, as on-failure:N") }
            maxRetries = n
        }
    }

    public func validate() throws(APIError) {
        if let n = maxRetries { guard name == .onFailure, n >= 0 else { throw .params("restart.maxRetries: a count, with on-failure only") } }
    }

    /// Whether a container that exited with `code`, already restarted `count` times, goes again.
    public func restarts(exitCode code: Int, count: Int) -> Bool {
        switch name {
        case .no: return false
        case .always, .unlessStopped: return true
        case .onFailure: return code != 0 && ((maxRetries ?? 0) == 0 || count < maxRetries!)
        }
    }

    /// The pause before restart number `count + 1`: 100 ms doubling, at most 2 s (docker's shape).
    public static func backoff(afterRestarts count: Int) -> Double { min(0.1 * Double(1 << min(count, 5)), 2.0) }
}

/// A new container (params of container.create and container.run).
public struct CreateOptions: Codable, Sendable, Equatable {
    /// An image name (normalized as docker's) or a digest / unique digest prefix.
    public var image: String
    public var name: String?
    /// The command, replacing the image's Cmd.
    public var cmd: [String]?
    /// Replaces the image's Entrypoint (and drops its Cmd); `[]` clears it, as `--entrypoint ''`.
    public var entrypoint: [String]?
    /// `KEY=VALUE`, merged over the image's.
    public var env: [String]?
    public var workdir: String?
    /// `name`, `uid`, `name:group`, `uid:gid`, resolved in the image's /etc/passwd and /etc/group.
    public var user: String?
    public var hostname: String?
    public var tty: Bool?
    public var stdin: Bool?
    public var readOnly: Bool?
    /// `SRC:/DST[:ro|rw]`: SRC absolute is a bind mount, else a named volume (created on first use).
    public var volumes: [String]?
    /// Bytes; at least 4 MiB.
    public var memory: Int64?
    /// CPUs as a fraction (1.5 is 150 ms per 100 ms period).
    public var cpus: Double?
    /// Zero or less: no limit.
    public var pidsLimit: Int64?
    /// Capability names with or without `CAP_`; `ALL` adds every capability the host grants.
    public var capAdd: [String]?
    /// `ALL` drops every capability.
    public var capDrop: [String]?
    /// Every capability the host grants, no seccomp filter, no masked or read-only /proc paths,
    /// every device (docker's `--privileged`).
    public var privileged: Bool?
    /// No seccomp filter at all (`--security-opt seccomp=unconfined`).
    public var seccompUnconfined: Bool?
    /// A filter in the runtime spec's `linux.seccomp` shape instead of the default one.
    public var seccompProfile: Seccomp?
    /// The process may not gain privileges through setuid files (`no-new-privileges`).
    public var noNewPrivileges: Bool?
    /// A small init as PID 1 that reaps orphans and forwards signals (docker's `--init`).
    public var `init`: Bool?
    /// A health check replacing the image's (`test` `["NONE"]` turns it off).
    public var healthcheck: HealthcheckOptions?
    public var restart: RestartPolicy?
    /// Remove the container when it exits (docker's `--rm` with `-d`).
    public var autoRemove: Bool?
    /// Parent cgroup (default `/scontainerd`).
    public var cgroupParent: String?
    public var labels: [String: String]?
    /// `bridge` (the default), `none` (loopback only), `host`, `container:ID` (its network
    /// namespace), or one or more network names (published ports go to the first).
    public var networks: [String]?
    /// Host ports forwarded to the container (docker's `-p`, parsed by `PortBinding.parse`).
    public var publish: [PortBinding]?
    /// Every port the image exposes, each to a free host port (docker's `-P`).
    public var publishAll: Bool?
    /// More names this container answers to on its user-defined networks.
    public var networkAliases: [String]?
    /// A fixed IPv4 address on its (first) network.
    public var ip: String?
    /// Nameservers, search domains and resolver options for its /etc/resolv.conf.
    public var dns: [String]?
    public var dnsSearch: [String]?
    public var dnsOptions: [String]?
    /// `NAME:IP` lines for its /etc/hosts.
    public var addHosts: [String]?

    public init(image: String) { self.image = image }

    /// Checks every field that needs no image or host to check.
    public func validate() throws(APIError) {
        if let name { try Validate.name(name, field: "name") }
        try Validate.command(cmd, field: "cmd")
        try Validate.command(entrypoint, field: "entrypoint")
        try Validate.env(env)
        try Validate.containerPath(workdir, field: "workdir")
        try Validate.labels(labels)
        if let user { guard user.utf8.count <= 256, !user.contains(where: { $0.isWhitespace || $0 == "\0" }) else { throw .params("user: \(ReferenceError.shown(user))") } }
        if let h = hostname {
            guard !h.isEmpty, h.utf8.count <= 64, h.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }) else {
                throw .params("hostname: \(ReferenceError.shown(h)) (letters, digits, '-', '.', at most 64)")
            }
        }
        if let m = memory, m < 4 << 20 { throw .params("memory: at least 4 MiB (4194304), got \(m)") }
        if let c = cpus, !(c > 0 && c <= 1024) { throw .params("cpus: a positive number of CPUs, got \(c)") }
        for (field, caps) in [("capAdd", capAdd), ("capDrop", capDrop)] {
            for (i, c) in (caps ?? []).enumerated() where c.uppercased() != "ALL" && Capability.canonical(c) == nil {
                throw .params("\(field)[\(i)]: unknown capability \(ReferenceError.shown(c))")
            }
        }
        if seccompUnconfined == true && seccompProfile != nil { throw .params("seccompProfile: conflicts with seccompUnconfined") }
        if let profile = seccompProfile, profile.defaultAction.isEmpty { throw .params("seccompProfile.defaultAction: required") }
        try restart?.validate()
        if let p = cgroupParent {
            guard p.hasPrefix("/"), !p.split(separator: "/").contains(".."), p.utf8.count <= 1024, !p.utf8.contains(0) else {
                throw .params("cgroupParent: an absolute cgroup path without '..'")
            }
        }
        if autoRemove == true, let r = restart, r.name != .no { throw .params("autoRemove: conflicts with restart \(r.name.rawValue)") }
        for (i, v) in (volumes ?? []).enumerated() {
            guard (try? VolumeSpec(parsing: v)) != nil else { throw .params("volumes[\(i)]: \(ReferenceError.shown(v)) is not SRC:/DST[:ro|rw]") }
        }
        try validateNetworking()
    }

    /// The network fields: a mode or names, ports, addresses and resolver settings.
    func validateNetworking() throws(APIError) {
        let nets = networks ?? []
        guard nets.count <= 32 else { throw .params("networks: at most 32") }
        for (i, n) in nets.enumerated() {
            if n.hasPrefix("container:") {
                guard nets.count == 1, n.count > 10 else { throw .params("networks[\(i)]: container:ID goes alone") }
            } else if n == "none" || n == "host" {
                guard nets.count == 1 else { throw .params("networks[\(i)]: \(n) goes alone") }
            } else {
                try Validate.name(n, field: "networks[\(i)]")
            }
        }
        if Set(nets).count != nets.count { throw .params("networks: a network is named twice") }
        let own = nets.isEmpty || !(nets[0] == "none" || nets[0] == "host" || nets[0].hasPrefix("container:"))
        if !own && (publish?.isEmpty == false || publishAll == true) { throw .params("publish: ports need a network of the container's own (not \(nets[0]))") }
        if !own && (ip != nil || networkAliases?.isEmpty == false) { throw .params("ip, networkAliases: need a network of the container's own (not \(nets[0]))") }
        guard (publish?.count ?? 0) <= 4096 else { throw .params("publish: at most 4096 ports") }
        for (i, p) in (publish ?? []).enumerated() {
            guard p.containerPort > 0 else { throw .params("publish[\(i)].containerPort: 1 to 65535") }
            if !p.hostIP.isEmpty && IPv4Address(p.hostIP) == nil { throw .params("publish[\(i)].hostIP: \(ReferenceError.shown(p.hostIP)) is not an IPv4 address") }
        }
        if let ip, IPv4Address(ip) == nil { throw .params("ip: \(ReferenceError.shown(ip)) is not an IPv4 address") }
        for (i, a) in (networkAliases ?? []).enumerated() { try Validate.hostName(a, field: "networkAliases[\(i)]") }
        for (i, d) in (dns ?? []).enumerated() where IPv4Address(d) == nil && !d.contains(":") {
            throw .params("dns[\(i)]: \(ReferenceError.shown(d)) is not an IP address")
        }
        for (i, d) in (dnsSearch ?? []).enumerated() { try Validate.hostName(d, field: "dnsSearch[\(i)]") }
        for (i, o) in (dnsOptions ?? []).enumerated() {
            guard !o.isEmpty, o.utf8.count <= 256, !o.contains(where: { $0.isWhitespace || $0.isNewline }) else { throw .params("dnsOptions[\(i)]: \(ReferenceError.shown(o))") }
        }
        for (i, h) in (addHosts ?? []).enumerated() {
            guard let colon = h.firstIndex(of: ":") else { throw .params("addHosts[\(i)]: \(ReferenceError.shown(h)) is not NAME:IP") }
            try Validate.hostName(String(h[..<colon]), field: "addHosts[\(i)]")
            let address = String(h[h.index(after: colon)...])
            guard IPv4Address(address) != nil || (address.contains(":") && address.allSatisfy({ $0.isHexDigit || $0 == ":" })) else {
                throw .params("addHosts[\(i)]: \(ReferenceError.shown(address)) is not an IP address")
            }
        }
    }
}

/// One `SRC:/DST[:ro|rw]` volume entry.
public struct VolumeSpec: Sendable, Equatable {
    public var source: String
    public var destination: String
    public var readOnly: Bool
    public var isBind: Bool { source.hasPrefix("/") }

    public init(parsing text: String) throws(APIError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count), !parts[0].isEmpty, parts[1].hasPrefix("/"), parts.count == 2 || ["ro", "rw"].contains(parts[2]),
              !text.utf8.contains(0), text.utf8.count <= 4096 else {
            throw .params("volume \(ReferenceError.shown(text)): SRC:/DESTINATION[:ro|rw]")
        }
        if !parts[0].hasPrefix("/") { try Validate.name(parts[0], field: "volume name") }
        source = parts[0]; destination = parts[1]; readOnly = parts.count == 3 && parts[2] == "ro"
    }
}

/// The Linux capability names a container may be given.
public enum Capability {
    public static let all = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
        "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
        "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// `chown`, `CAP_CHOWN`, `cap_chown` as `CAP_CHOWN`; nil for an unknown name.
    public static func canonical(_ name: String) -> String? {
        let upper = name.uppercased()
        let full = upper.hasPrefix("CAP_") ? upper : "CAP_" + upper
        return all.contains(full) ? full : nil
    }
}

/// How a process ended: the code a shell shows (128+signal when killed), the signal, OOM.
public struct ExitStatus: Codable, Sendable, Equatable, Notice {
    public static let key = NoticeKey.exit
    public var code: Int
    public var signal: Int?
    public var oomKilled: Bool?
    public var time: String?

    public init(code: Int, signal: Int? = nil, oomKilled: Bool? = nil, time: String? = nil) {
        self.code = code; self.signal = signal; self.oomKilled = oomKilled; self.time = time
    }
}

/// A container as inspect and list report it.
public struct ContainerInfo: Codable, Sendable {
    public var id: String
    public var name: String
    public var namespace: String
    public var image: String
    public var imageDigest: String
    public var status: ContainerStatus
    public var pid: Int
    public var exitCode: Int?
    public var exitSignal: Int?
    public var oomKilled: Bool
    public var restartCount: Int
    public var created: String
    public var startedAt: String?
    public var finishedAt: String?
    public var logPath: String
    public var bundle: String
    public var labels: [String: String]
    public var config: CreateOptions
    /// Why the last run ended abnormally: its shim died and the container was killed (exit code 255).
    public var error: String?
    /// With a health check: its status and last results.
    public var health: HealthInfo?
    /// Its network mode, namespace, addresses and published ports.
    public var network: NetworkSettings?

    public init(id: String, name: String, namespace: String, image: String, imageDigest: String, status: ContainerStatus, pid: Int,
                exitCode: Int?, exitSignal: Int?, oomKilled: Bool, restartCount: Int, created: String, startedAt: String?,
                finishedAt: String?, logPath: String, bundle: String, labels: [String: String], config: CreateOptions) {
        self.id = id; self.name = name; self.namespace = namespace; self.image = image; self.imageDigest = imageDigest
        self.status = status; self.pid = pid; self.exitCode = exitCode; self.exitSignal = exitSignal; self.oomKilled = oomKilled
        self.restartCount = restartCount; self.created = created; self.startedAt = startedAt; self.finishedAt = finishedAt
        self.logPath = logPath; self.bundle = bundle; self.labels = labels; self.config = config
    }
}

public struct ContainerRef: Codable, Sendable { public var id: String; public var name: String; public init(id: String, name: String) { self.id = id; self.name = name } }
public struct ContainerList: Codable, Sendable { public var containers: [ContainerInfo]; public init(containers: [ContainerInfo]) { self.containers = containers } }

/// A container by id, name or unique id prefix.
public struct ContainerParams: Codable, Sendable { public var id: String; public init(id: String) { self.id = id } }

public struct ListContainersParams: Codable, Sendable {
    /// Exited and created containers too.
    public var all: Bool?
    /// Keys: id, name, label, status, ancestor.
    public var filters: Filters?
    public init(all: Bool? = nil, filters: Filters? = nil) { self.all = all; self.filters = filters }
    public static let filterKeys = ["id", "name", "label", "status", "ancestor"]
}

public struct StopParams: Codable, Sendable {
    public var id: String
    /// Seconds between the stop signal and SIGKILL (default 10, at most 86400).
    public var timeout: Double?
    public init(id: String, timeout: Double? = nil) { self.id = id; self.timeout = timeout }
}

public struct KillParams: Codable, Sendable {
    public var id: String
    /// A name (`SIGTERM`, `TERM`) or number; default SIGKILL.
    public var signal: Signal?
    /// Every process in the container, not only its init.
    public var all: Bool?
    public init(id: String, signal: Signal? = nil, all: Bool? = nil) { self.id = id; self.signal = signal; self.all = all }
}

public struct RemoveParams: Codable, Sendable {
    public var id: String
    /// Stop a running container first (SIGKILL).
    public var force: Bool?
    public init(id: String, force: Bool? = nil) { self.id = id; self.force = force }
}

public struct ExecParams: Codable, Sendable {
    public var id: String
    public var cmd: [String]
    public var tty: Bool?
    public var stdin: Bool?
    public var env: [String]?
    public var user: String?
    public var workdir: String?
    /// The terminal's size when the process starts (with `tty`): its first look sees it.
    public var consoleSize: ResizeParams?
    public init(id: String, cmd: [String]) { self.id = id; self.cmd = cmd }
}

/// An exec has started; its output and exit follow as notices.
public struct ExecStarted: Codable, Sendable { public var pid: Int; public init(pid: Int) { self.pid = pid } }
/// An attach has begun; output and exit follow as notices.
public struct AttachStarted: Codable, Sendable {
    public var terminal: Bool
    public var stdin: Bool
    public init(terminal: Bool, stdin: Bool) { self.terminal = terminal; self.stdin = stdin }
}

/// A chunk of a stream's output (base64: it may not be text).
public struct Output: Notice, Equatable {
    public static let key = NoticeKey.output
    public enum Stream: String, Codable, Sendable { case stdout, stderr }
    public var stream: Stream
    public var data: String
    public init(stream: Stream, data: String) { self.stream = stream; self.data = data }
}

public struct StdinParams: Codable, Sendable { public var data: String; public init(data: String) { self.data = data } }
public struct StdinResult: Codable, Sendable { public var written: Int; public init(written: Int) { self.written = written } }
public struct ResizeParams: Codable, Sendable {
    public var rows: UInt16
    public var cols: UInt16
    public init(rows: UInt16, cols: UInt16) { self.rows = rows; self.cols = cols }
}

/// A new name for a container (unique in its namespace, as `name` in create options).
public struct RenameParams: Codable, Sendable {
    public var id: String
    public var name: String
    public init(id: String, name: String) { self.id = id; self.name = name }
}

/// New limits for a container (running or not), applied through the runtime's `update` and
/// kept for its later runs; a new restart policy. Unset fields keep their values.
public struct UpdateParams: Codable, Sendable {
    public var id: String
    public var memory: Int64?
    public var cpus: Double?
    public var pidsLimit: Int64?
    public var restart: RestartPolicy?
    public init(id: String) { self.id = id }
}

/// One sample of a container's accounting, read from its cgroup and its network namespace.
public struct ContainerStats: Codable, Sendable {
    public var id: String
    public var name: String
    /// When the sample was read (RFC 3339).
    public var read: String
    /// CPU time the container has used, and the host's in all, in nanoseconds: a CPU share is
    /// the ratio of their increase between two samples, times `onlineCPUs`.
    public var cpuNanos: UInt64
    public var systemNanos: UInt64
    public var onlineCPUs: Int
    /// Memory in use without the page cache (as docker reports it), and the limit (the host's
    /// memory when there is none).
    public var memoryUsage: UInt64
    public var memoryLimit: UInt64
    public var pids: UInt64
    public var blockRead: UInt64
    public var blockWrite: UInt64
    public var netReceived: UInt64
    public var netSent: UInt64
    public init(id: String, name: String, read: String, cpuNanos: UInt64, systemNanos: UInt64, onlineCPUs: Int, memoryUsage: UInt64,
                memoryLimit: UInt64, pids: UInt64, blockRead: UInt64, blockWrite: UInt64, netReceived: UInt64, netSent: UInt64) {
        self.id = id; self.name = name; self.read = read; self.cpuNanos = cpuNanos; self.systemNanos = systemNanos
        self.onlineCPUs = onlineCPUs; self.memoryUsage = memoryUsage; self.memoryLimit = memoryLimit; self.pids = pids
        self.blockRead = blockRead; self.blockWrite = blockWrite; self.netReceived = netReceived; self.netSent = netSent
    }
}

/// The container's processes as `ps -ef` shows them: its column titles and one row each.
public struct TopResult: Codable, Sendable {
    public var titles: [String]
    public var processes: [[String]]
    public init(titles: [String], processes: [[String]]) { self.titles = titles; self.processes = processes }
}

/// Files between the host and a container (docker's `cp`; the socket is root-only, so the
/// caller names host paths the daemon reads or writes itself).
public struct CopyParams: Codable, Sendable {
    public var id: String
    /// Absolute, resolved inside the container's root filesystem.
    public var containerPath: String
    /// Absolute.
    public var hostPath: String
    /// Host to container; otherwise container to host.
    public var toContainer: Bool?
    public init(id: String, containerPath: String, hostPath: String, toContainer: Bool) {
        self.id = id; self.containerPath = containerPath; self.hostPath = hostPath; self.toContainer = toContainer
    }
}

/// A health check: `test` is `["CMD", args…]`, `["CMD-SHELL", script]` or `["NONE"]`; seconds.
public struct HealthcheckOptions: Codable, Sendable, Equatable {
    public var test: [String]
    public var interval: Double?
    public var timeout: Double?
    public var startPeriod: Double?
    public var retries: Int?
    public init(test: [String]) { self.test = test }
}

/// The last health checks of a running container, as docker's `State.Health`.
public struct HealthInfo: Codable, Sendable {
    /// `starting`, `healthy` or `unhealthy`.
    public var status: String
    public var failingStreak: Int
    public var log: [HealthResult]
    public init(status: String, failingStreak: Int, log: [HealthResult]) { self.status = status; self.failingStreak = failingStreak; self.log = log }
}

public struct HealthResult: Codable, Sendable {
    public var start: String
    public var end: String
    public var exitCode: Int
    public var output: String
    public init(start: String, end: String, exitCode: Int, output: String) { self.start = start; self.end = end; self.exitCode = exitCode; self.output = output }
}

/// What a container changed in its image: `A` added, `C` changed, `D` deleted.
public struct ContainerChanges: Codable, Sendable {
    public struct Change: Codable, Sendable, Equatable {
        public var kind: String
        public var path: String
        public init(kind: String, path: String) { self.kind = kind; self.path = path }
    }
    public var changes: [Change]
    public init(changes: [Change]) { self.changes = changes }
}

/// Where `container.export` writes the container's filesystem as a tar.
public struct ExportParams: Codable, Sendable {
    public var id: String
    /// Absolute, on the daemon's host.
    public var hostPath: String
    public init(id: String, hostPath: String) { self.id = id; self.hostPath = hostPath }
}

/// A container's changes as a new image (`container.commit`, docker's `commit`).
public struct CommitParams: Codable, Sendable {
    public var id: String
    /// The new image's name (`REPOSITORY[:TAG]`); unnamed (its digest) without one.
    public var reference: String?
    public var message: String?
    public var author: String?
    /// Dockerfile instructions for the config: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL.
    public var changes: [String]?
    /// Pause a running container while its changes are read (default true).
    public var pause: Bool?
    public init(id: String) { self.id = id }
}
