import API
import Foundation
import Wire

/// One container's attachment to one network as the CNI plugins made it. Cached on disk
/// (`ROOT/cni/results/ID/NETWORK.json`) with the exact config list ADD ran, so DEL runs
/// with the same after the network changed or the daemon restarted, as the CNI spec asks.
struct CNIAttachment: Codable, Sendable {
    var containerID: String
    var network: String
    var interface: String
    var netns: String
    /// The config list (JSON text) as ADD ran it.
    var configList: String
    var ports: [PortBinding]
    /// A fixed address asked for (the `ips` capability).
    var ips: [String]
    var aliases: [String]
    /// The last plugin's result (JSON text); empty until ADD succeeded.
    var result: String = ""

    /// The container's address, prefix, gateway and MAC on this network, from the result.
    var endpoint: (ip: String, prefix: Int, gateway: String, mac: String)? {
        guard let r = try? JSONValue.parse(result), let first = r["ips"]?.array?.first,
              let cidr = first["address"]?.string, let slash = cidr.firstIndex(of: "/"), let prefix = Int(cidr[cidr.index(after: slash)...]) else { return nil }
        let mac = r["interfaces"]?.array?.first { $0["name"]?.string == interface && $0["sandbox"] != nil }?["mac"]?.string ?? ""
        return (String(cidr[..<slash]), prefix, first["gateway"]?.string ?? "", mac)
    }
}

/// A plugin's failure, in the words of the CNI error it printed (`msg`, `details`).
struct CNIError: Error, CustomStringConvertible {
    let description: String
}

/// Runs CNI plugins by the spec's exec protocol: the plugin binary from `CNI_PATH`, the
/// command and container in `CNI_*` variables, the network's config on stdin with the
/// previous plugin's result as `prevResult` and the runtime's values under `runtimeConfig`
/// for the capabilities the plugin declares.
struct CNIRunner {
    let pluginDirs: [String]
    let cacheDir: String

    /// ADD through every plugin of the list; on failure, DEL of what ran (nothing left set up).
    func add(_ attachment: CNIAttachment) throws -> CNIAttachment {
        var a = attachment
        try cache(a)  // before anything is set up: a crash during ADD still leaves what DEL needs
        do {
            var previous: JSONValue?
            for plugin in try plugins(a) { previous = try invoke("ADD", plugin, a, previous: previous) }
            a.result = previous?.serialized ?? "{}"
            try cache(a)
            return a
        } catch {
            try? del(a)
            throw error
        }
    }

    /// Loopback up in a new namespace (the loopback plugin; nothing to cache: it ends with the namespace).
    func loopbackUp(netns: String, containerID: String) throws {
        let a = CNIAttachment(containerID: containerID, network: "loopback", interface: "lo", netns: netns,
                              configList: #"{"cniVersion":"1.0.0","name":"loopback","plugins":[{"type":"loopback"}]}"#, ports: [], ips: [], aliases: [])
        for plugin in try plugins(a) { _ = try invoke("ADD", plugin, a, previous: nil) }
    }

    /// DEL in reverse order with the cached result; the cache entry goes when all succeeded.
    func del(_ a: CNIAttachment) throws {
        let previous = a.result.isEmpty ? nil : try? JSONValue.parse(a.result)
        var failures: [String] = []
        for plugin in try plugins(a).reversed() {
            do { _ = try invoke("DEL", plugin, a, previous: previous) } catch { failures.append("\(error)") }
        }
        guard failures.isEmpty else { throw CNIError(description: failures.joined(separator: "; ")) }
        try? FileManager.default.removeItem(atPath: path(a.containerID, a.network))
        if cached(a.containerID).isEmpty { forget(a.containerID) }
    }

    /// Removes a container's cache directory whole: with its last attachment gone, or when the
    /// container itself goes (then an attachment whose DEL failed is given up: no record is
    /// left to retry it). A daemon killed mid-write leaves a temporary file there too.
    func forget(_ containerID: String) {
        try? FileManager.default.removeItem(atPath: cacheDir + "/" + containerID)
    }

    /// CHECK through every plugin: whether what ADD set up is still in place.
    func check(_ a: CNIAttachment) throws {
        let previous = try JSONValue.parse(a.result)
        for plugin in try plugins(a) { _ = try invoke("CHECK", plugin, a, previous: previous) }
    }

    /// The cached attachments of a container, or of every container.
    func cached(_ containerID: String? = nil) -> [CNIAttachment] {
        let ids = containerID.map { [$0] } ?? ((try? FileManager.default.contentsOfDirectory(atPath: cacheDir)) ?? [])
        return ids.flatMap { id -> [CNIAttachment] in
            let names = (try? FileManager.default.contentsOfDirectory(atPath: cacheDir + "/" + id)) ?? []
            return names.filter { $0.hasSuffix(".json") }.sorted().compactMap { name in
                guard let data = FileManager.default.contents(atPath: cacheDir + "/" + id + "/" + name) else { return nil }
                return try? JSONDecoder().decode(CNIAttachment.self, from: data)
            }
        }.sorted { $0.interface < $1.interface }
    }

    private func path(_ id: String, _ network: String) -> String { cacheDir + "/" + id + "/" + network + ".json" }

    /// Written beside its final name and renamed over it, so a reader never sees half of one.
    private func cache(_ a: CNIAttachment) throws {
        try FileManager.default.createDirectory(atPath: cacheDir + "/" + a.containerID, withIntermediateDirectories: true)
        let final = path(a.containerID, a.network), temporary = cacheDir + "/" + a.containerID + "/." + a.network + ".json.tmp"
        try JSONEncoder().encode(a).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, final) == 0 else { throw CNIError(description: "cache \(final): \(String(cString: strerror(errno)))") }
    }

    /// The list's plugins, each with the list's name and version.
    private func plugins(_ a: CNIAttachment) throws -> [JSONValue] {
        let list = try JSONValue.parse(a.configList)
        guard let name = list["name"], let version = list["cniVersion"], let plugins = list["plugins"]?.array else {
            throw CNIError(description: "network \(a.network): its config list has no name, cniVersion or plugins")
        }
        return plugins.map { plugin in
            guard case .object(let members) = plugin else { return plugin }
            return .object([("cniVersion", version), ("name", name)] + members.filter { $0.0 != "cniVersion" && $0.0 != "name" })
        }
    }

    /// One plugin run; its result (ADD) or nil.
    private func invoke(_ command: String, _ plugin: JSONValue, _ a: CNIAttachment, previous: JSONValue?) throws -> JSONValue? {
        guard case .object(var members) = plugin, let type = plugin["type"]?.string, !type.contains("/") else {
            throw CNIError(description: "network \(a.network): a plugin without a type")
        }
        if let previous { members.append(("prevResult", previous)) }
        let runtime = runtimeConfig(plugin, a)
        if !runtime.isEmpty { members.append(("runtimeConfig", .object(runtime))) }
        guard let binary = pluginDirs.map({ $0 + "/" + type }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw CNIError(description: "network \(a.network): CNI plugin \(type) not found in \(pluginDirs.joined(separator: ":"))")
        }
        let env = ["CNI_COMMAND=" + command, "CNI_CONTAINERID=" + a.containerID, "CNI_NETNS=" + a.netns, "CNI_IFNAME=" + a.interface,
                   "CNI_PATH=" + pluginDirs.joined(separator: ":"), "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        let out = try execute(binary, [], input: Array(JSONValue.object(members).serialized.utf8), env: env)
        guard out.code == 0 else { throw CNIError(description: "network \(a.network): plugin \(type) failed (\(command)): \(CNIRunner.reason(out))") }
        guard command == "ADD" else { return nil }
        guard let result = try? JSONValue.parse(out.stdout) else {
            throw CNIError(description: "network \(a.network): plugin \(type) printed no result for ADD")
        }
        return result
    }

    /// The values the runtime passes for the capabilities the plugin declares.
    private func runtimeConfig(_ plugin: JSONValue, _ a: CNIAttachment) -> [(String, JSONValue)] {
        let capabilities = plugin["capabilities"]
        var values: [(String, JSONValue)] = []
        if capabilities?["portMappings"]?.bool == true && !a.ports.isEmpty {
            values.append(("portMappings", .array(a.ports.map { p in
                .object([("hostPort", .number(Double(p.hostPort))), ("containerPort", .number(Double(p.containerPort))),
                         ("protocol", .string(p.proto.rawValue)), ("hostIP", .string(p.hostIP))])
            })))
        }
        if capabilities?["ips"]?.bool == true && !a.ips.isEmpty { values.append(("ips", .array(a.ips.map { .string($0) }))) }
        return values
    }

    /// A CNI error's `msg: details`, else what the plugin wrote to stderr.
    static func reason(_ out: ProgramOutput) -> String {
        if let error = try? JSONValue.parse(out.stdout), let msg = error["msg"]?.string {
            let details = error["details"]?.string ?? ""
            return details.isEmpty ? msg : msg + ": " + details
        }
        let text = (out.stderr + out.stdout).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "exit status \(out.code)" : text
    }
}
