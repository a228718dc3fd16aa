import API
import Foundation

/// Name resolution on user-defined networks through Debian's aardvark-dns, driven as podman's
/// netavark drives it: one file per network in a config directory (first line the addresses it
/// listens on, the bridge's gateway; then `ID IPv4 IPv6 NAMES` per container), SIGHUP to
/// reload. It answers for the network a query arrives on only, so names do not cross networks.
final class NameServer: @unchecked Sendable {
    let dir: String
    let binary: String?
    private let lock = NSLock()

    init(dir: String) {
        self.dir = dir
        binary = ["/usr/lib/podman/aardvark-dns", "/usr/libexec/podman/aardvark-dns", "/usr/bin/aardvark-dns"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    var pidFile: String { dir + "/aardvark.pid" }

    /// Adds (or replaces) a container's names on a network.
    func register(network: String, gateway: String, containerID: String, address: String, names: [String]) throws {
        guard let binary else { throw APIError.precondition("network \(network): no aardvark-dns here for name resolution (install aardvark-dns)") }
        try lock.withLock {
            var entries = read(network).filter { !$0.hasPrefix(containerID + " ") }
            entries.append("\(containerID) \(address)  \(names.joined(separator: ","))")
            try write(network, gateway: gateway, entries: entries)
            if let pid = runningPID() {
                kill(pid, SIGHUP)
            } else {
                let out = try execute(binary, ["--config", dir, "-p", "53", "run"])
                guard out.code == 0 else { throw APIError.internal("aardvark-dns: \(out.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
            }
        }
    }

    /// Drops a container's names; the server stops when it has no network left to serve.
    func unregister(network: String, containerID: String) {
        lock.withLock {
            let before = read(network)
            let entries = before.filter { !$0.hasPrefix(containerID + " ") }
            guard entries.count != before.count else { return }
            if entries.isEmpty { unlink(dir + "/" + network) } else { try? write(network, gateway: firstLine(network), entries: entries) }
            guard let pid = runningPID() else { return }
            if servedNetworks().isEmpty { stop(pid) } else { kill(pid, SIGHUP) }
        }
    }

    /// Stops the server whatever it serves (the daemon's networks are being taken down).
    func stopAll() {
        lock.withLock {
            for n in servedNetworks() { unlink(dir + "/" + n) }
            if let pid = runningPID() { stop(pid) }
        }
    }

    private func stop(_ pid: pid_t) {
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while NameServer.isRunning(pid) && Date() < deadline { usleep(10_000) }
        unlink(pidFile)
    }

    private func servedNetworks() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") && $0 != "aardvark.pid" }
    }

    private func runningPID() -> pid_t? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)),
              NameServer.isRunning(pid) else { return nil }
        return pid
    }

    /// Alive and not a zombie (a daemonized server is reaped lazily by PID 1).
    static func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return !stat[close...].hasPrefix(") Z")
    }

    private func read(_ network: String) -> [String] {
        let text = (try? String(contentsOfFile: dir + "/" + network, encoding: .utf8)) ?? ""
        return Array(text.split(separator: "\n").dropFirst().map(String.init))
    }

    private func firstLine(_ network: String) -> String {
        let text = (try? String(contentsOfFile: dir + "/" + network, encoding: .utf8)) ?? ""
        return String(text.split(separator: "\n").first ?? "")
    }

    private func write(_ network: String, gateway: String, entries: [String]) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try ([gateway] + entries).joined(separator: "\n").appending("\n").write(toFile: dir + "/" + network, atomically: true, encoding: .utf8)
    }
}
