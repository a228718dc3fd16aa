import API
import Foundation
import OCI
import Wire

/// Networks as API resources: records in the metadata DB, a bridge on the host, and a CNI
/// config list the daemon writes (ROOT/cni/net.d/NAME.conflist) and owns.
extension Daemon {
    /// The network every container gets unless told otherwise, as docker's.
    static let defaultNetwork = "bridge"

    var cniConfigDir: String { config.root + "/cni/net.d" }
    var cni: CNIRunner { CNIRunner(pluginDirs: config.cniPluginDirs, cacheDir: config.root + "/cni/results") }

    /// Makes the default network on the first start; puts every network's bridge back (after
    /// a reboot the records are there and the bridges are not).
    func ensureNetworks() {
        do {
            if try metadata.network(Daemon.defaultNetwork) == nil {
                _ = try createNetwork(Request.defaultNamespace, NetworkCreateParams(name: Daemon.defaultNetwork))
            }
            for n in try metadata.networks() {
                logged("network \(n.name): its bridge") { try NetworkHost.locked { try NetworkHost.ensureBridge(n) } }
            }
        } catch {
            log.error("networks: \(error)")
        }
    }

    /// `ns`: where its event goes (the network itself is the host's).
    func createNetwork(_ ns: String, _ p: NetworkCreateParams) throws -> NetworkInfo {
        try p.validate()
        // none and host are modes; aardvark-dns keeps its pid file beside the networks' files.
        if ["none", "host", "aardvark.pid"].contains(p.name) { throw APIError.conflict("network name \(p.name) is reserved") }
        if try metadata.network(p.name) != nil { throw APIError.conflict("network with name \(p.name) already exists") }
        let id = Daemon.newID()
        let row = try NetworkHost.locked { () -> Metadata.NetworkRow in
            let others = try metadata.networks().compactMap { IPv4Network(cidr: $0.subnet) }
            let subnet: IPv4Network
            if let text = p.subnet {
                subnet = IPv4Network(cidr: text)!
                if let clash = others.first(where: { $0.overlaps(subnet) }) { throw APIError.conflict("subnet \(subnet) overlaps the subnet \(clash) of another network") }
                if let clash = NetworkHost.hostSubnets().first(where: { $0.overlaps(subnet) }) { throw APIError.conflict("subnet \(subnet) overlaps \(clash), a route of this host") }
            } else {
                guard let free = NetworkHost.freeSubnet(avoiding: others + NetworkHost.hostSubnets()) else {
                    throw APIError.conflict("no free subnet left in the default pools (172.17-31.0.0/16, 192.168.0.0/16): give one")
                }
                subnet = free
            }
            let gateway = p.gateway ?? IPv4Address(value: subnet.base.value + 1).description
            let row = Metadata.NetworkRow(id: id, name: p.name, subnet: subnet.description, gateway: gateway,
                                          bridge: NetworkHost.bridgePrefix + id.prefix(12), internal: p.internal == true,
                                          labels: p.labels ?? [:], created: Timestamp.now())
            try NetworkHost.ensureBridge(row)
            do {
                try writeConfigList(row)
                try metadata.insertNetwork(row, event: EventDraft(namespace: ns, type: .network, action: .create, id: id, attributes: ["name": p.name]))
            } catch {
                _ = NetworkHost.removeBridge(row)
                try? FileManager.default.removeItem(atPath: configListPath(row.name))
                throw error
            }
            return row
        }
        return networkInfo(row)
    }

    func findNetwork(_ ref: String) throws -> Metadata.NetworkRow {
        guard let n = try metadata.network(ref) else { throw APIError.notFound("network \(ReferenceError.shown(ref)) not found") }
        return n
    }

    func removeNetwork(_ ns: String, _ ref: String) throws {
        let n = try findNetwork(ref)
        if n.name == Daemon.defaultNetwork { throw APIError.precondition("bridge is a pre-defined network and cannot be removed") }
        let users = try metadata.containers(nil).filter { networkNames($0.options).contains(n.name) }
        if let user = users.first { throw APIError.conflict("network \(n.name) has container \(user.name) attached (\(users.count) in all)") }
        try metadata.removeNetwork(n.id, event: EventDraft(namespace: ns, type: .network, action: .destroy, id: n.id, attributes: ["name": n.name]))
        for problem in NetworkHost.removeBridge(n) { log.warning("network \(n.name): \(problem)") }
        try? FileManager.default.removeItem(atPath: configListPath(n.name))
        try? FileManager.default.removeItem(atPath: ipamDir + "/" + n.name)
    }

    /// Every user-defined network no container names.
    func pruneNetworks(_ ns: String) throws -> [String] {
        let used = Set(try metadata.containers(nil).flatMap { networkNames($0.options) })
        var removed: [String] = []
        for n in try metadata.networks() where n.name != Daemon.defaultNetwork && !used.contains(n.name) {
            do { try removeNetwork(ns, n.id); removed.append(n.name) } catch { log.warning("prune network \(n.name): \(error)") }
        }
        return removed
    }

    func networkInfo(_ n: Metadata.NetworkRow) -> NetworkInfo {
        let endpoints = cni.cached().filter { $0.network == n.name }.compactMap { a -> NetworkEndpoint? in
            guard let e = a.endpoint else { return nil }
            let name = (try? metadata.container(id: a.containerID))?.name ?? ""
            return NetworkEndpoint(network: n.name, containerID: a.containerID, containerName: name, interface: a.interface, ipAddress: e.ip,
                                   prefixLength: e.prefix, gateway: e.gateway, macAddress: e.mac, aliases: a.aliases)
        }
        return NetworkInfo(id: n.id, name: n.name, driver: "bridge", subnet: n.subnet, gateway: n.gateway, bridge: n.bridge, internal: n.internal,
                           labels: n.labels, created: n.created, containers: endpoints)
    }

    var ipamDir: String { config.root + "/cni/ipam" }
    func configListPath(_ name: String) -> String { cniConfigDir + "/" + name + ".conflist" }

    /// bridge (the daemon's bridge, host-local addresses from the subnet), portmap, firewall:
    /// the CNI config list of a network, written where the daemon keeps its own.
    private func writeConfigList(_ n: Metadata.NetworkRow) throws {
        let range: [(String, JSONValue)] = [("subnet", .string(n.subnet)), ("gateway", .string(n.gateway))]
        var ipam: [(String, JSONValue)] = [("type", .string("host-local")), ("ranges", .array([.array([.object(range)])])),
                                           ("dataDir", .string(ipamDir))]
        if !n.internal { ipam.append(("routes", .array([.object([("dst", .string("0.0.0.0/0"))])]))) }
        let bridge: JSONValue = .object([
            ("type", .string("bridge")), ("bridge", .string(n.bridge)), ("isGateway", .bool(!n.internal)), ("ipMasq", .bool(!n.internal)),
            ("hairpinMode", .bool(true)), ("capabilities", .object([("ips", .bool(true))])), ("ipam", .object(ipam)),
        ])
        let portmap: JSONValue = .object([("type", .string("portmap")), ("capabilities", .object([("portMappings", .bool(true))])), ("snat", .bool(true))])
        let firewall: JSONValue = .object([("type", .string("firewall")), ("backend", .string("iptables"))])
        let list: JSONValue = .object([("cniVersion", .string("1.0.0")), ("name", .string(n.name)), ("plugins", .array([bridge, portmap, firewall]))])
        try FileManager.default.createDirectory(atPath: cniConfigDir, withIntermediateDirectories: true)
        try Data(list.serialized.utf8).write(to: URL(fileURLWithPath: configListPath(n.name)), options: .atomic)
    }
}

/// Connecting and disconnecting containers, kept in their options for later runs.
extension Daemon {
    func connectNetwork(_ ns: String, _ p: NetworkConnectParams) throws {
        let n = try findNetwork(p.network)
        let c = try row(ns, p.container)
        guard case .networks(let names) = NetworkMode(c.options) else {
            throw APIError.precondition("container \(c.name) shares a network namespace (\(c.options.networks?.first ?? "")): it cannot join networks")
        }
        guard !names.contains(n.name) else { throw APIError.conflict("container \(c.name) is already attached to network \(n.name)") }
        for (i, a) in (p.aliases ?? []).enumerated() { try Validate.hostName(a, field: "params.aliases[\(i)]") }
        if let ip = p.ip, IPv4Address(ip) == nil { throw APIError.params("params.ip: \(ReferenceError.shown(ip)) is not an IPv4 address") }
        var options = c.options
        options.networks = names + [n.name]
        if let aliases = p.aliases, !aliases.isEmpty { options.networkAliases = (options.networkAliases ?? []) + aliases }
        if c.status.isLive {
            try withNetworkLock(c.id) {
                let used = Set(cni.cached(c.id).map(\.interface))
                let interface = (0...).lazy.map { "eth\($0)" }.first { !used.contains($0) }!
                try attachOne(id: c.id, name: c.name, network: n, interface: interface, ports: [], ip: p.ip, aliases: options.networkAliases ?? [])
            }
        }
        try metadata.setOptions(c.id, options, event: EventDraft(namespace: ns, type: .network, action: .connect, id: n.id,
                                                                 attributes: ["name": n.name, "container": c.id]))
    }

    func disconnectNetwork(_ ns: String, _ p: NetworkDisconnectParams) throws {
        let n = try findNetwork(p.network)
        let c = try row(ns, p.container)
        let names = networkNames(c.options)
        guard names.contains(n.name) else { throw APIError.notFound("container \(c.name) is not attached to network \(n.name)") }
        guard names.count > 1 else { throw APIError.precondition("network \(n.name) is the only network of container \(c.name)") }
        withNetworkLock(c.id) {
            for a in cni.cached(c.id) where a.network == n.name {
                nameServer.unregister(network: n.name, containerID: c.id)
                logged("network \(n.name): detach \(c.id)") { try cni.del(a) }
            }
        }
        var options = c.options
        options.networks = names.filter { $0 != n.name }
        try metadata.setOptions(c.id, options, event: EventDraft(namespace: ns, type: .network, action: .disconnect, id: n.id,
                                                                 attributes: ["name": n.name, "container": c.id]))
    }
}

extension Daemon {
    /// Takes every network off the host (for a stopped daemon: `scontainerd networks-down`):
    /// each container's attachments and namespace, the DNS server, the bridges and their rules.
    /// The records stay; the next start puts the bridges back.
    public func takeNetworksDown() -> [String] {
        var problems: [String] = []
        for id in Set(cni.cached().map(\.containerID)) { tearDownNetwork(id) }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: config.state + "/netns")) ?? [] {
            NetworkHost.removeNamespace(at: config.state + "/netns/" + name)
        }
        nameServer.stopAll()
        do { for n in try metadata.networks() { problems += NetworkHost.removeBridge(n) } } catch { problems.append("networks: \(error)") }
        return problems
    }
}
