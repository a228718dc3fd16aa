import API
import Foundation
import OCI

/// How a container is networked, from its options.
enum NetworkMode: Equatable {
    /// Its own namespace with only loopback, up (the runtime makes it).
    case none
    /// The host's namespace.
    case host
    /// Another running container's namespace.
    case container(String)
    /// Its own namespace (the daemon makes it) on these networks, `eth0` on the first.
    case networks([String])

    init(_ o: CreateOptions) {
        let nets = o.networks ?? []
        switch nets.first {
        case nil: self = .networks([Daemon.defaultNetwork])
        case "none": self = .none
        case "host": self = .host
        case let n? where n.hasPrefix("container:"): self = .container(String(n.dropFirst(10)))
        default: self = .networks(nets)
        }
    }
}

/// What the bundle needs of a container's network: which namespace, the hostname, and the
/// generated /etc files to bind in.
struct NetworkPlan {
    /// A network namespace to join; nil: a new one (none); "" : the host's.
    var namespacePath: String?
    var hostname: String
    /// (host file, path in the container)
    var files: [(String, String)]
}

/// A container's network from create to exit, as CRI does it: the daemon makes a named network
/// namespace, attaches it to each network through CNI, publishes ports and registers names
/// before the runtime creates the container, and takes all of it down when the container exits.
extension Daemon {
    func netnsPath(_ id: String) -> String { config.state + "/netns/" + id }
    func etcFile(_ id: String, _ name: String) -> String { containerDir(id) + "/" + name }

    func networkNames(_ o: CreateOptions) -> [String] {
        if case .networks(let names) = NetworkMode(o) { return names }
        return []
    }

    /// Sets up the network of a container about to be created (or run again); on failure,
    /// nothing of it is left.
    func setUpNetwork(_ ns: String, id: String, name: String, options o: CreateOptions, image: ImageConfiguration) throws -> NetworkPlan {
        let hostname = o.hostname ?? String(id.prefix(12))
        let etc = [("hosts", "/etc/hosts"), ("resolv.conf", "/etc/resolv.conf"), ("hostname", "/etc/hostname")].map { (etcFile(id, $0.0), $0.1) }
        let hostResolv = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
        switch NetworkMode(o) {
        case .none:
            try writeEtc(id, hosts: EtcFiles.hosts(hostname: hostname, addresses: [], extra: o.addHosts ?? []),
                         resolv: EtcFiles.resolvConf(host: hostResolv, nameservers: [], options: o), hostname: hostname)
            return NetworkPlan(namespacePath: nil, hostname: hostname, files: etc)
        case .host:
            let name = o.hostname ?? ProcessInfo.processInfo.hostName
            let hosts = ((try? String(contentsOfFile: "/etc/hosts", encoding: .utf8)) ?? "") + EtcFiles.hosts(hostname: name, addresses: [], extra: o.addHosts ?? []).split(separator: "\n").dropFirst(6).map { $0 + "\n" }.joined()
            try writeEtc(id, hosts: hosts, resolv: hostResolv, hostname: name)
            return NetworkPlan(namespacePath: "", hostname: name, files: etc)
        case .container(let ref):
            let other = try row(ns, ref)
            guard other.status.isLive, other.pid > 0 else { throw APIError.precondition("cannot join the network of container \(other.name): it is \(other.status.rawValue)") }
            let path = FileManager.default.fileExists(atPath: netnsPath(other.id)) ? netnsPath(other.id) : "/proc/\(other.pid)/ns/net"
            let theirs = etc.map { (etcFile(other.id, ($0.0 as NSString).lastPathComponent), $0.1) }
            let name = (try? String(contentsOfFile: etcFile(other.id, "hostname"), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? hostname
            return NetworkPlan(namespacePath: path, hostname: name, files: theirs)
        case .networks(let names):
            return try attach(ns, id: id, name: name, hostname: hostname, networks: names, options: o, image: image, files: etc, resolv: hostResolv)
        }
    }

    /// The namespace, the CNI attachments, ports, names and files of a networked container.
    private func attach(_ ns: String, id: String, name: String, hostname: String, networks names: [String], options o: CreateOptions,
                        image: ImageConfiguration, files: [(String, String)], resolv: String) throws -> NetworkPlan {
        let networks = try names.map { try findNetwork($0) }
        try withNetworkLock(id) {
            try NetworkHost.createNamespace(at: netnsPath(id))
            do {
                try cni.loopbackUp(netns: netnsPath(id), containerID: id)
                let ports = try reservePorts(id, publish: o.publish ?? [], exposed: o.publishAll == true ? Array((image.config?.ExposedPorts ?? [:]).keys) : [])
                for (i, n) in networks.enumerated() {
                    try attachOne(id: id, name: name, network: n, interface: "eth\(i)", ports: i == 0 ? ports : [], ip: i == 0 ? o.ip : nil,
                                  aliases: o.networkAliases ?? [])
                }
            } catch {
                detachAll(id)
                throw error
            }
        }
        let attachments = cni.cached(id)
        let addresses = attachments.compactMap { $0.endpoint?.ip }
        let dnsServers = networks.filter { $0.name != Daemon.defaultNetwork }.map(\.gateway)
        try writeEtc(id, hosts: EtcFiles.hosts(hostname: hostname, addresses: Array(addresses.prefix(1)), extra: o.addHosts ?? []),
                     resolv: EtcFiles.resolvConf(host: resolv, nameservers: dnsServers, options: o), hostname: hostname)
        return NetworkPlan(namespacePath: netnsPath(id), hostname: hostname, files: files)
    }

    /// One network: CNI ADD, then its names with the DNS server (user-defined networks only,
    /// as docker's default bridge has no name resolution).
    func attachOne(id: String, name: String, network n: Metadata.NetworkRow, interface: String, ports: [PortBinding], ip: String?, aliases: [String]) throws {
        guard let list = try? String(contentsOfFile: configListPath(n.name), encoding: .utf8) else {
            throw APIError.internal("network \(n.name): its CNI config list is missing")
        }
        var ips: [String] = []
        if let ip {
            guard let subnet = IPv4Network(cidr: n.subnet), let address = IPv4Address(ip), subnet.containsHost(address) else {
                throw APIError.params("ip: \(ip) is not an address of network \(n.name) (\(n.subnet))")
            }
            ips = ["\(ip)/\(subnet.prefixLength)"]
        }
        let names = n.name == Daemon.defaultNetwork ? [] : [name, String(id.prefix(12))] + aliases
        let draft = CNIAttachment(containerID: id, network: n.name, interface: interface, netns: netnsPath(id), configList: list,
                                  ports: ports, ips: ips, aliases: names)
        let attached: CNIAttachment
        do { attached = try cni.add(draft) } catch let e as CNIError { throw APIError(.runtimeError, e.description) }
        if !names.isEmpty, let address = attached.endpoint?.ip {
            try nameServer.register(network: n.name, gateway: n.gateway, containerID: id, address: address, names: names)
        }
    }

    /// Takes down everything `setUpNetwork` made; safe to call again, or for a container with
    /// nothing set up.
    func tearDownNetwork(_ id: String) {
        withNetworkLock(id) { detachAll(id) }
    }

    private func detachAll(_ id: String) {
        for a in cni.cached(id).reversed() {
            nameServer.unregister(network: a.network, containerID: id)
            logged("network \(a.network): detach \(id)") { try cni.del(a) }
        }
        releasePorts(id)
        NetworkHost.removeNamespace(at: netnsPath(id))
    }

    /// After a restart of the daemon: CNI CHECK of a running container's attachments, on a
    /// thread of its own (a plugin run per attachment; the daemon serves meanwhile). What is
    /// broken is logged; the container keeps what it has.
    func checkNetwork(_ id: String) {
        let attachments = cni.cached(id).filter { !$0.result.isEmpty }
        guard !attachments.isEmpty else { return }
        Thread.detachNewThread { [self] in
            for a in attachments {
                do { try cni.check(a) } catch { log.warning("container \(id): network \(a.network) fails CNI CHECK: \(error)") }
            }
        }
    }

    /// The namespace path and attachments as inspect shows them.
    func networkSettings(_ c: Metadata.ContainerRow) -> NetworkSettings {
        let mode: String
        switch NetworkMode(c.options) {
        case .none: mode = "none"
        case .host: mode = "host"
        case .container(let ref): mode = "container:" + ref
        case .networks(let names): mode = names.joined(separator: ",")
        }
        let attachments = cni.cached(c.id)
        let endpoints = attachments.compactMap { a -> NetworkEndpoint? in
            guard let e = a.endpoint else { return nil }
            return NetworkEndpoint(network: a.network, containerID: c.id, containerName: c.name, interface: a.interface, ipAddress: e.ip,
                                   prefixLength: e.prefix, gateway: e.gateway, macAddress: e.mac, aliases: a.aliases)
        }
        let sandbox = FileManager.default.fileExists(atPath: netnsPath(c.id)) ? netnsPath(c.id) : nil
        return NetworkSettings(mode: mode, sandbox: sandbox, endpoints: endpoints, ports: attachments.flatMap(\.ports))
    }

    private func writeEtc(_ id: String, hosts: String, resolv: String, hostname: String) throws {
        try FileManager.default.createDirectory(atPath: containerDir(id), withIntermediateDirectories: true)
        // In place (not renamed over): a running container's bind mount keeps seeing the file.
        for (name, text) in [("hosts", hosts), ("resolv.conf", resolv), ("hostname", hostname + "\n")] {
            let fd = open(etcFile(id, name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw APIError.internal("write \(etcFile(id, name)): \(String(cString: strerror(errno)))") }
            let bytes = Array(text.utf8)
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard written == bytes.count else { throw APIError.internal("write \(etcFile(id, name)): short write") }
        }
    }

    /// Serializes network changes of one container (its exit, its removal, a connect); the
    /// lock is dropped when the container is removed.
    func withNetworkLock<T>(_ id: String, _ body: () throws -> T) rethrows -> T {
        lock.lock()
        let l = networkLocks[id] ?? NSLock()
        networkLocks[id] = l
        lock.unlock()
        l.lock()
        defer { l.unlock() }
        return try body()
    }
}

extension Daemon {
    /// Before a container runs again: its network set up anew (a new namespace at the same
    /// path, so the bundle holds); a joined container's namespace is looked up again.
    func renewNetwork(_ c: Metadata.ContainerRow) throws {
        let image = try storedImage(manifestDigest: c.manifestDigest, name: nil)
        let plan = try setUpNetwork(c.namespace, id: c.id, name: c.name, options: c.options, image: image.config)
        guard case .container = NetworkMode(c.options), let path = plan.namespacePath else { return }
        let file = URL(fileURLWithPath: bundleDir(c.id) + "/config.json")
        var spec = try JSONDecoder().decode(Spec.self, from: Data(contentsOf: file))
        let namespaces = spec.linux?.namespaces?.map { $0.type == "network" ? Namespace(type: "network", path: path) : $0 }
        spec.linux?.namespaces = namespaces
        try writeBundleConfig(spec, id: c.id)
    }
}
