import OCI

/// A network: a Linux bridge with an IPv4 subnet, served through CNI plugins (bridge,
/// host-local, portmap, firewall). Networks belong to the host, not to a namespace: a bridge,
/// a subnet and a host port are host-wide, so every namespace sees the same ones.
public struct NetworkCreateParams: Codable, Sendable {
    public var name: String
    /// `bridge`, the only driver (and the default).
    public var driver: String?
    /// An IPv4 CIDR (`10.5.0.0/24`); allocated from 172.17-31.0.0/16 and 192.168.0.0/16 in
    /// /20s when absent. Must not overlap another network or a route of the host.
    public var subnet: String?
    /// An address inside the subnet; its first host address when absent.
    public var gateway: String?
    /// No route out: containers reach each other and nothing else.
    public var `internal`: Bool?
    public var labels: [String: String]?
    public init(name: String) { self.name = name }

    public func validate() throws(APIError) {
        try Validate.name(name, field: "name")
        guard name.utf8.count <= 64 else { throw .params("name: at most 64 characters for a network") }
        if let d = driver, d != "bridge" { throw .params("driver: \(ReferenceError.shown(d)) is not supported (bridge)") }
        try Validate.labels(labels)
        var cidr: IPv4Network?
        if let s = subnet {
            guard let n = IPv4Network(cidr: s), n.prefixLength >= 8, n.prefixLength <= 30 else {
                throw .params("subnet: \(ReferenceError.shown(s)) is not an IPv4 CIDR with a prefix from /8 to /30")
            }
            cidr = n
        }
        if let g = gateway {
            guard let address = IPv4Address(g) else { throw .params("gateway: \(ReferenceError.shown(g)) is not an IPv4 address") }
            guard let cidr else { throw .params("gateway: needs subnet") }
            guard cidr.containsHost(address) else { throw .params("gateway: \(g) is not a host address of \(cidr)") }
        }
    }
}

/// A network as inspect and list report it, with the containers attached now.
public struct NetworkInfo: Codable, Sendable {
    public var id: String
    public var name: String
    public var driver: String
    public var subnet: String
    public var gateway: String
    /// The host's bridge interface.
    public var bridge: String
    public var `internal`: Bool
    public var labels: [String: String]
    public var created: String
    public var containers: [NetworkEndpoint]
    public init(id: String, name: String, driver: String, subnet: String, gateway: String, bridge: String, internal: Bool,
                labels: [String: String], created: String, containers: [NetworkEndpoint]) {
        self.id = id; self.name = name; self.driver = driver; self.subnet = subnet; self.gateway = gateway; self.bridge = bridge
        self.internal = `internal`; self.labels = labels; self.created = created; self.containers = containers
    }
}

/// A container's place on one network while it runs.
public struct NetworkEndpoint: Codable, Sendable, Equatable {
    public var network: String
    public var containerID: String
    public var containerName: String
    /// The interface inside the container (`eth0`, `eth1`, …).
    public var interface: String
    public var ipAddress: String
    public var prefixLength: Int
    public var gateway: String
    public var macAddress: String
    /// Names other containers on the network resolve to this address (its name, short id, aliases).
    public var aliases: [String]
    public init(network: String, containerID: String, containerName: String, interface: String, ipAddress: String, prefixLength: Int,
                gateway: String, macAddress: String, aliases: [String]) {
        self.network = network; self.containerID = containerID; self.containerName = containerName; self.interface = interface
        self.ipAddress = ipAddress; self.prefixLength = prefixLength; self.gateway = gateway; self.macAddress = macAddress; self.aliases = aliases
    }
}

public struct NetworkList: Codable, Sendable { public var networks: [NetworkInfo]; public init(networks: [NetworkInfo]) { self.networks = networks } }

public struct NetworkListParams: Codable, Sendable {
    public var filters: Filters?
    public init(filters: Filters? = nil) { self.filters = filters }
    public static let filterKeys = ["name", "label", "id"]
}

/// Attaches a container to a network (now if it runs, and on each later run).
public struct NetworkConnectParams: Codable, Sendable {
    public var network: String
    /// A container id, name or unique id prefix in the request's namespace.
    public var container: String
    public var aliases: [String]?
    /// A fixed address in the network's subnet.
    public var ip: String?
    public init(network: String, container: String) { self.network = network; self.container = container }
}

public struct NetworkDisconnectParams: Codable, Sendable {
    public var network: String
    public var container: String
    public init(network: String, container: String) { self.network = network; self.container = container }
}

/// One published port: `hostPort` 0 takes a free port when the container starts.
public struct PortBinding: Codable, Sendable, Equatable, Hashable {
    public enum Proto: String, Codable, Sendable { case tcp, udp }
    /// Where the host listens: empty for all of its addresses.
    public var hostIP: String
    public var hostPort: UInt16
    public var containerPort: UInt16
    public var proto: Proto
    public init(hostIP: String = "", hostPort: UInt16, containerPort: UInt16, proto: Proto = .tcp) {
        self.hostIP = hostIP; self.hostPort = hostPort; self.containerPort = containerPort; self.proto = proto
    }

    /// docker's `-p`: `[ip:][hostPort[-end]:]containerPort[-end][/tcp|udp]`; ranges of the same
    /// length, or a host range with no host port given. One binding per container port.
    public static func parse(_ text: String) throws(APIError) -> [PortBinding] {
        let bad = APIError.params("publish: \(ReferenceError.shown(text)) is not [ip:][hostPort:]containerPort[/tcp|udp]")
        var body = Substring(text)
        var proto = Proto.tcp
        if let slash = body.lastIndex(of: "/") {
            guard let p = Proto(rawValue: String(body[body.index(after: slash)...])) else { throw bad }
            proto = p
            body = body[..<slash]
        }
        var parts = body.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...3).contains(parts.count) else { throw bad }
        let ip = parts.count == 3 ? parts.removeFirst() : ""
        if !ip.isEmpty { guard IPv4Address(ip) != nil else { throw .params("publish: \(ReferenceError.shown(ip)) is not an IPv4 address") } }
        guard let container = PortBinding.range(parts.last!), container.lowerBound > 0 else { throw bad }
        var host: ClosedRange<UInt16>? = nil
        if parts.count == 2 && !parts[0].isEmpty {
            guard let h = PortBinding.range(parts[0]), h.lowerBound > 0, h.count == container.count else {
                throw .params("publish: \(ReferenceError.shown(text)): the host and container port ranges differ")
            }
            host = h
        }
        return container.enumerated().map { i, port in
            PortBinding(hostIP: ip, hostPort: host.map { $0.lowerBound + UInt16(i) } ?? 0, containerPort: port, proto: proto)
        }
    }

    private static func range(_ text: String) -> ClosedRange<UInt16>? {
        let ends = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(ends.count), let low = UInt16(ends[0]), let high = UInt16(ends.last!), low <= high, high - low < 1024 else { return nil }
        return low...high
    }

    /// `0.0.0.0:8080->80/tcp`, as docker's ps.
    public var text: String { "\(hostIP.isEmpty ? "0.0.0.0" : hostIP):\(hostPort)->\(containerPort)/\(proto.rawValue)" }
}

/// A container's network as inspect shows it.
public struct NetworkSettings: Codable, Sendable {
    /// `bridge`-style (one or more networks), `none`, `host` or `container:ID`.
    public var mode: String
    /// The network namespace the daemon made for it (a bind mount), while it runs.
    public var sandbox: String?
    public var endpoints: [NetworkEndpoint]
    /// Published ports with the host ports they got.
    public var ports: [PortBinding]
    public init(mode: String, sandbox: String?, endpoints: [NetworkEndpoint], ports: [PortBinding]) {
        self.mode = mode; self.sandbox = sandbox; self.endpoints = endpoints; self.ports = ports
    }
}

/// An IPv4 address as its 32 bits.
public struct IPv4Address: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var value: UInt32
    public init(value: UInt32) { self.value = value }
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCII), let n = UInt8(p), p == "0" || !p.hasPrefix("0") else { return nil }
            v = v << 8 | UInt32(n)
        }
        value = v
    }
    public var description: String { "\(value >> 24).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)" }
    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
}

/// An IPv4 subnet: its base address and prefix length.
public struct IPv4Network: Sendable, Hashable, CustomStringConvertible {
    public var base: IPv4Address
    public var prefixLength: Int
    public init(base: IPv4Address, prefixLength: Int) {
        self.prefixLength = prefixLength
        self.base = IPv4Address(value: base.value & IPv4Network.mask(prefixLength))
    }
    /// `a.b.c.d/n` whose host bits are zero.
    public init?(cidr: String) {
        let parts = cidr.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = IPv4Address(String(parts[0])), let n = Int(parts[1]), (0...32).contains(n),
              a.value & ~IPv4Network.mask(n) == 0 else { return nil }
        base = a; prefixLength = n
    }
    static func mask(_ n: Int) -> UInt32 { n == 0 ? 0 : UInt32.max << UInt32(32 - n) }
    public var last: IPv4Address { IPv4Address(value: base.value | ~IPv4Network.mask(prefixLength)) }
    public func contains(_ a: IPv4Address) -> Bool { a.value & IPv4Network.mask(prefixLength) == base.value }
    /// Inside, and neither the network's own address nor its broadcast address.
    public func containsHost(_ a: IPv4Address) -> Bool { contains(a) && a != base && a != last }
    public func overlaps(_ other: IPv4Network) -> Bool { contains(other.base) || other.contains(base) }
    public var description: String { "\(base)/\(prefixLength)" }
}
