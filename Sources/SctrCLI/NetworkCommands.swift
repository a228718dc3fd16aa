import API
import ArgumentParser
import Foundation

/// `sctr network …`, as docker's.
struct NetworkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "network", abstract: "Manage networks.",
                                                    subcommands: [Create.self, List.self, Inspect.self, Remove.self, Connect.self, Disconnect.self, Prune.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a network.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Driver to manage the Network (bridge).") var driver = "bridge"
        @Option(help: "Subnet in CIDR format that represents a network segment.") var subnet: String?
        @Option(help: "IPv4 Gateway for the master subnet.") var gateway: String?
        @Flag(name: .customLong("internal"), help: "Restrict external access to the network.") var isInternal = false
        @Option(name: .long, help: "Set metadata on a network (KEY=VALUE).") var label: [String] = []
        @Argument var name: String
        func run() throws {
            var p = NetworkCreateParams(name: name)
            p.driver = driver
            p.subnet = subnet
            p.gateway = gateway
            p.internal = isInternal ? true : nil
            p.labels = LabelFlags.parse(label)
            print(try daemonCall { try global.client.call(Calls.NetworkCreate.self, p) }.id)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List networks.", aliases: ["list"])
        @OptionGroup var global: GlobalOptions
        @Flag(name: .shortAndLong, help: "Only display network IDs.") var quiet = false
        @Flag(help: "Do not truncate the output.") var noTrunc = false
        @Option(name: .shortAndLong, help: "Filter output (label=, name=, id=).") var filter: [String] = []
        @Option(help: "table, json, or a template ({{.Name}}, {{json .}}).") var format: String?
        func run() throws {
            let networks = try daemonCall { try global.client.call(Calls.NetworkList.self, NetworkListParams(filters: try Filter.parse(filter))) }.networks
            let id = { (n: NetworkInfo) in noTrunc ? n.id : String(n.id.prefix(12)) }
            if quiet { for n in networks { print(id(n)) }; return }
            let rows = networks.map { Row($0, ["ID": id($0), "Name": $0.name, "Driver": $0.driver, "Scope": "local", "Subnet": $0.subnet,
                                               "Internal": String($0.internal), "Labels": ContainerText.labels($0.labels)]) }
            try Listing(format: format).print(rows, columns: [("ID", "NETWORK ID"), ("Name", "NAME"), ("Driver", "DRIVER"), ("Scope", "SCOPE")])
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Display detailed information on one or more networks.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "A template ({{.Subnet}}, {{json .}}).") var format: String?
        @Argument var names: [String]
        func validate() throws { if names.isEmpty { throw ValidationError("\"network inspect\" requires at least 1 argument") } }
        func run() throws {
            var found: [NetworkInfo] = []
            let failed = (try? forEach(names) { found.append(try global.client.call(Calls.NetworkInspect.self, NameParams(name: $0))) }) == nil
            if let format { try Listing(format: format).print(found.map { Row($0, [:]) }, columns: []) } else { print(Listing.json(found, pretty: true)) }
            if failed { throw CLIExit(code: 1) }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove one or more networks.", aliases: ["remove"])
        @OptionGroup var global: GlobalOptions
        @Argument var names: [String]
        func validate() throws { if names.isEmpty { throw ValidationError("\"network rm\" requires at least 1 argument") } }
        func run() throws { try forEach(names) { try global.client.call(Calls.NetworkRemove.self, NameParams(name: $0)); print($0) } }
    }

    struct Connect: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "connect", abstract: "Connect a container to a network.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Add network-scoped alias for the container.") var alias: [String] = []
        @Option(help: "IPv4 address (e.g., 172.30.100.104).") var ip: String?
        @Argument var network: String
        @Argument var container: String
        func run() throws {
            var p = NetworkConnectParams(network: network, container: container)
            p.aliases = alias.isEmpty ? nil : alias
            p.ip = ip
            _ = try daemonCall { try global.client.call(Calls.NetworkConnect.self, p) }
        }
    }

    struct Disconnect: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "disconnect", abstract: "Disconnect a container from a network.")
        @OptionGroup var global: GlobalOptions
        @Argument var network: String
        @Argument var container: String
        func run() throws {
            _ = try daemonCall { try global.client.call(Calls.NetworkDisconnect.self, NetworkDisconnectParams(network: network, container: container)) }
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove all unused networks.")
        @OptionGroup var global: GlobalOptions
        @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.") var force = false
        func run() throws {
            if !force {
                print("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ", terminator: "")
                guard readLine()?.lowercased().hasPrefix("y") == true else { return }
            }
            let r = try daemonCall { try global.client.call(Calls.NetworkPrune.self, Empty()) }
            if !r.networksDeleted.isEmpty { print("Deleted Networks:\n" + r.networksDeleted.joined(separator: "\n")) }
        }
    }
}

/// `sctr port CONTAINER [PRIVATE_PORT[/PROTO]]`: the published ports as docker lists them.
struct Port: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "port", abstract: "List port mappings or a specific mapping for the container.")
    @OptionGroup var global: GlobalOptions
    @Argument var container: String
    @Argument(help: "PRIVATE_PORT[/PROTO]") var privatePort: String?
    func run() throws {
        let info = try daemonCall { try global.client.call(Calls.ContainerInspect.self, ContainerParams(id: container)) }
        var ports = info.network?.ports ?? []
        if let privatePort {
            let parts = privatePort.split(separator: "/")
            guard let number = UInt16(parts[0]) else { throw fail("invalid port \(privatePort)", code: 1) }
            let proto = parts.count > 1 ? String(parts[1]) : "tcp"
            ports = ports.filter { $0.containerPort == number && $0.proto.rawValue == proto }
            guard !ports.isEmpty else { throw fail("no public port '\(privatePort)' published for \(container)", code: 1) }
            for p in ports { print("\(p.hostIP.isEmpty ? "0.0.0.0" : p.hostIP):\(p.hostPort)") }
            return
        }
        for p in ports { print("\(p.containerPort)/\(p.proto.rawValue) -> \(p.hostIP.isEmpty ? "0.0.0.0" : p.hostIP):\(p.hostPort)") }
    }
}
