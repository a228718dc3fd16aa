import API
import CLinux
import Foundation

/// What a network is on the host: a bridge with the gateway address, firewall rules that keep
/// it apart from other networks, a subnet no route of the host uses. Host-wide facts, so the
/// subnet choice and the bridge's creation happen under one lock shared by every daemon here.
enum NetworkHost {
    static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/sbin/ip"
    static let iptables = ["/usr/sbin/iptables", "/sbin/iptables"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/iptables"
    /// Every daemon's bridges start so: their isolation rules match them all by this prefix.
    static let bridgePrefix = "sc-"
    static let lockPath = "/run/scontainerd-networks.lock"

    /// Holds the host-wide network lock (flock) around `body`.
    static func locked<T>(_ body: () throws -> T) throws -> T {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw APIError.internal("open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        return try body()
    }

    /// docker's default pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.
    static let pool: [IPv4Network] = (17...31).map { IPv4Network(base: IPv4Address(value: 0xAC00_0000 | UInt32($0) << 16), prefixLength: 16) }
        + (0..<16).map { IPv4Network(base: IPv4Address(value: 0xC0A8_0000 | UInt32($0) << 12), prefixLength: 20) }

    /// The host's routes (main table) and interface addresses: subnets a network must not take.
    static func hostSubnets() -> [IPv4Network] {
        let table = (try? String(contentsOfFile: "/proc/net/route", encoding: .utf8)) ?? ""
        var nets: [IPv4Network] = table.split(separator: "\n").dropFirst().compactMap { line in
            let f = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard f.count > 7, let dest = UInt32(f[1], radix: 16), let mask = UInt32(f[7], radix: 16), mask != 0 else { return nil }
            return IPv4Network(base: IPv4Address(value: dest.byteSwapped), prefixLength: mask.nonzeroBitCount)
        }
        let addresses = (try? execute(ip, ["-4", "-o", "addr", "show"]).stdout) ?? ""
        for line in addresses.split(separator: "\n") {
            let f = line.split(separator: " ")
            if let i = f.firstIndex(of: "inet"), i + 1 < f.count {
                let parts = f[i + 1].split(separator: "/")
                if parts.count == 2, let a = IPv4Address(String(parts[0])), let n = Int(parts[1]) { nets.append(IPv4Network(base: a, prefixLength: n)) }
            }
        }
        return nets
    }

    /// The first pool subnet that overlaps nothing taken.
    static func freeSubnet(avoiding taken: [IPv4Network]) -> IPv4Network? {
        pool.first { candidate in !taken.contains { $0.overlaps(candidate) } }
    }

    /// Creates the bridge with its gateway address, up (idempotent), and its isolation rules.
    static func ensureBridge(_ n: Metadata.NetworkRow) throws {
        guard let subnet = IPv4Network(cidr: n.subnet) else { throw APIError.internal("network \(n.name): bad subnet \(n.subnet)") }
        if !FileManager.default.fileExists(atPath: "/sys/class/net/" + n.bridge) {
            try run(ip, ["link", "add", n.bridge, "type", "bridge"])
        }
        let address = "\(n.gateway)/\(subnet.prefixLength)"
        let shown = (try? execute(ip, ["-4", "-o", "addr", "show", "dev", n.bridge]).stdout) ?? ""
        if !shown.contains(" \(address) ") { try run(ip, ["addr", "add", address, "dev", n.bridge]) }
        try run(ip, ["link", "set", n.bridge, "up"])
        for rule in isolationRules(n) where !(try hasRule(rule)) { try run(iptables, ["-w", "-A"] + rule) }
    }

    /// Removes the bridge and its rules; what is already gone is no failure.
    static func removeBridge(_ n: Metadata.NetworkRow) -> [String] {
        var problems: [String] = []
        for rule in isolationRules(n) where (try? hasRule(rule)) == true {
            do { try run(iptables, ["-w", "-D"] + rule) } catch { problems.append("\(error)") }
        }
        if FileManager.default.fileExists(atPath: "/sys/class/net/" + n.bridge) {
            do { try run(ip, ["link", "del", n.bridge]) } catch { problems.append("\(error)") }
        }
        return problems
    }

    /// In the CNI firewall plugin's admin chain (checked before its accepts): traffic from this
    /// bridge to another scontainerd bridge is dropped, and for an internal network, to anywhere.
    static func isolationRules(_ n: Metadata.NetworkRow) -> [[String]] {
        let comment = ["-m", "comment", "--comment", "scontainerd network \(n.id.prefix(12))"]
        let out = n.internal ? ["!", "-o", n.bridge] : ["-o", bridgePrefix + "+"]
        return [["CNI-ADMIN", "-i", n.bridge, "-o", n.bridge] + comment + ["-j", "ACCEPT"],
                ["CNI-ADMIN", "-i", n.bridge] + out + comment + ["-j", "DROP"]]
    }

    private static func hasRule(_ rule: [String]) throws -> Bool {
        // The chain exists before the firewall plugin's first run creates it.
        _ = try? execute(iptables, ["-w", "-N", "CNI-ADMIN"])
        return try execute(iptables, ["-w", "-C"] + rule).code == 0
    }

    private static func run(_ program: String, _ args: [String]) throws {
        let out = try execute(program, args)
        guard out.code == 0 else {
            throw APIError.internal("\((program as NSString).lastPathComponent) \(args.joined(separator: " ")): \(out.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    // MARK: network namespaces

    /// A new network namespace bound at `path` (a file the daemon owns).
    static func createNamespace(at path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        removeNamespace(at: path)
        let fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444)
        guard fd >= 0 else { throw APIError.internal("create \(path): \(String(cString: strerror(errno)))") }
        close(fd)
        guard cl_netns_create(path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw APIError.internal("new network namespace at \(path): \(reason)")
        }
    }

    /// Unbinds and removes a namespace file (the namespace ends with its last user).
    static func removeNamespace(at path: String) {
        while umount2(path, Int32(MNT_DETACH)) == 0 {}
        unlink(path)
    }
}
