import API
import Foundation
import Testing

/// Networks through CNI (issue 15): published ports, names on user networks, the network
/// modes, the /etc files, and nothing left behind. Traffic goes only to loopback, the host's
/// own addresses and the bridges these daemons made.
@Suite("networks")
struct NetworkTests {
    static let image = "test/web:1"

    static func daemon() throws -> DaemonInstance {
        let d = try DaemonInstance()
        let r = try d.importImage("web-oci.tar")
        guard r.code == 0 else { d.stop(); throw ClientError("import: \(r.stderr)") }
        return d
    }

    /// A page from a busybox httpd, or "" if nothing answers.
    static func fetch(_ url: String) throws -> String {
        try execute("/usr/bin/timeout", ["5", "/bin/busybox", "wget", "-q", "-O", "-", url]).stdout
    }

    static func endpoint(_ d: DaemonInstance, _ ref: String) throws -> [String: Any] {
        (((try d.inspect(ref)["network"] as? [String: Any])?["endpoints"] as? [[String: Any]]) ?? []).first ?? [:]
    }

    static func network(_ d: DaemonInstance, _ name: String) throws -> [String: Any] {
        let r = try d.sctr(["network", "inspect", name])
        return ((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [[String: Any]])?.first ?? [:]
    }

    /// A busybox httpd serving the container's /etc, started detached.
    static func web(_ d: DaemonInstance, _ flags: [String], port: Int = 80) throws -> Outcome {
        try d.run(["-d"] + flags, image, ["busybox", "httpd", "-f", "-p", String(port), "-h", "/etc"])
    }

    @Test("a published port answers at 127.0.0.1, the host's address and from another container; a taken port is refused; -P")
    func publishedPorts() throws {
        let d = try Self.daemon()
        defer { d.stop() }
        let port = try freeLoopbackPort()
        #expect(try Self.web(d, ["--name", "web", "-p", "127.0.0.1:\(port):80"]).code == 0)
        let hostname = String((try d.inspect("web")["id"] as? String ?? "").prefix(12))
        var page = ""
        try eventually("the published port answers") { page = try Self.fetch("http://127.0.0.1:\(port)/hostname"); return !page.isEmpty }
        #expect(page == hostname + "\n")
        #expect(try d.sctr(["port", "web"]).stdout == "80/tcp -> 127.0.0.1:\(port)\n")
        #expect(try d.sctr(["port", "web", "80"]).stdout == "127.0.0.1:\(port)\n")
        // A restart sets the network up again, on the same host port.
        #expect(try d.sctr(["restart", "-t", "0", "web"]).code == 0)
        try eventually("the port answers after a restart") { try Self.fetch("http://127.0.0.1:\(port)/hostname") == hostname + "\n" }

        let taken = try Self.web(d, ["--name", "second", "-p", "127.0.0.1:\(port):80"])
        #expect(taken.code == 125 && taken.stderr.contains("port is already allocated"), "\(taken)")
        #expect(try d.containers().compactMap { $0["name"] as? String } == ["web"], "nothing of the refused container is left")

        // Every address of the host: loopback, its own address, and the bridge's gateway from a container.
        let wide = try freeLoopbackPort()
        #expect(try Self.web(d, ["--name", "wide", "-p", "\(wide):80"]).code == 0)
        let wideName = String((try d.inspect("wide")["id"] as? String ?? "").prefix(12)) + "\n"
        try eventually("the port answers on loopback") { try Self.fetch("http://127.0.0.1:\(wide)/hostname") == wideName }
        let addresses = try execute("/sbin/ip", ["-4", "-o", "addr", "show", "scope", "global"]).stdout.split(separator: "\n").compactMap { line in
            line.split(separator: " ").drop { $0 != "inet" }.dropFirst().first.map { String($0.split(separator: "/")[0]) }
        }.filter { !$0.hasPrefix("172.") && !$0.hasPrefix("10.") && !$0.hasPrefix("192.168.") }
        if let own = addresses.first { #expect(try Self.fetch("http://\(own):\(wide)/hostname") == wideName, "from the host at \(own)") }
        let gateway = try Self.network(d, "bridge")["gateway"] as? String ?? ""
        let fromPeer = try d.run(["--rm"], Self.image, ["timeout", "5", "wget", "-q", "-O", "-", "http://\(gateway):\(wide)/hostname"])
        #expect(fromPeer.stdout == wideName, "\(fromPeer)")

        // -P: each exposed port of the image to a free host port.
        #expect(try Self.web(d, ["--name", "auto", "-P"], port: 8081).code == 0)
        let listed = try d.sctr(["port", "auto"]).stdout.split(separator: "\n").map(String.init)
        #expect(listed.count == 2 && listed[0].hasPrefix("80/tcp -> 0.0.0.0:") && listed[1].hasPrefix("8081/tcp -> 0.0.0.0:"), "\(listed)")
        let autoPort = listed.last.flatMap { $0.split(separator: ":").last.map(String.init) } ?? ""
        try eventually("the -P port answers") { try Self.fetch("http://127.0.0.1:\(autoPort)/hostname").count == 13 }
    }

    @Test("containers on a user network reach each other by name and alias, and nothing across networks")
    func namesOnUserNetworks() throws {
        let d = try Self.daemon()
        defer { d.stop() }
        #expect(try d.sctr(["network", "create", "front"]).code == 0)
        #expect(try d.sctr(["network", "create", "back"]).code == 0)
        #expect(try Self.web(d, ["--name", "api", "--network", "front", "--network-alias", "service"]).code == 0)
        let api = try Self.endpoint(d, "api")
        let apiIP = api["ipAddress"] as? String ?? ""
        #expect(api["network"] as? String == "front" && !apiIP.isEmpty)
        let apiHostname = String((try d.inspect("api")["id"] as? String ?? "").prefix(12)) + "\n"
        for name in ["api", "service"] {
            let r = try d.run(["--rm", "--network", "front"], Self.image, ["sh", "-c", "nslookup \(name) | tail -n +3; timeout 5 wget -q -O - http://\(name)/hostname"])
            #expect(r.code == 0 && r.stdout.contains(apiIP) && r.stdout.hasSuffix(apiHostname), "\(name): \(r)")
        }
        let resolv = try d.run(["--rm", "--network", "front"], Self.image, ["cat", "/etc/resolv.conf"]).stdout
        #expect(resolv.hasPrefix("nameserver \(try Self.network(d, "front")["gateway"] as? String ?? "")\n"), "\(resolv)")
        let across = try d.run(["--rm", "--network", "back"], Self.image, ["sh", "-c", "nslookup api; timeout 5 wget -q -O - http://\(apiIP)/hostname"])
        #expect(across.code != 0 && !across.stdout.contains("hostname") && !across.stdout.contains(apiIP + "\n"), "\(across)")
        #expect((try Self.network(d, "front")["containers"] as? [Any])?.count == 1)
        // connect: now on back as well; back's containers reach it.
        #expect(try d.sctr(["network", "connect", "back", "api"]).code == 0)
        let joined = try d.run(["--rm", "--network", "back"], Self.image, ["timeout", "5", "wget", "-q", "-O", "-", "http://api/hostname"])
        #expect(joined.code == 0, "\(joined)")
        #expect(try d.sctr(["network", "rm", "front"]).stderr.contains("has container api attached"))
    }

    @Test("--network none has lo only, up; container:ID shares the namespace; hosts, resolv.conf and hostname as asked")
    func modesAndEtcFiles() throws {
        let d = try Self.daemon()
        defer { d.stop() }
        let none = try d.run(["--rm", "--network", "none"], Self.image, ["sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags"])
        #expect(none.stdout == "lo\nunknown\n0x9\n", "\(none)")
        #expect(try d.run(["-d", "--name", "holder", "--hostname", "holder-host"], Self.image, ["sleep", "1000"]).code == 0)
        let holderIP = try Self.endpoint(d, "holder")["ipAddress"] as? String ?? "-"
        let joined = try d.run(["--rm", "--network", "container:holder"], Self.image, ["sh", "-c", "ip -4 -o addr show eth0; hostname"])
        #expect(joined.stdout.contains(" \(holderIP)/") && joined.stdout.hasSuffix("holder-host\n"), "\(joined)")
        // internal: addresses, no way out.
        #expect(try d.sctr(["network", "create", "--internal", "sealed"]).code == 0)
        let sealed = try d.run(["--rm", "--network", "sealed"], Self.image, ["sh", "-c", "ip route"])
        #expect(sealed.code == 0 && sealed.stdout.contains(" dev eth0 ") && !sealed.stdout.contains("default"), "\(sealed)")
        let host = try d.run(["--rm", "--network", "host"], Self.image, ["sh", "-c", "readlink /proc/self/ns/net"])
        #expect(host.stdout == (try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")) + "\n")

        let files = try d.run(["--rm", "--name", "files", "--hostname", "box.example", "--add-host", "db.local:10.9.8.7", "--dns", "192.0.2.53",
                               "--dns-search", "corp.example", "--dns-option", "ndots:2"], Self.image,
                              ["sh", "-c", "cat /etc/hostname; echo --; cat /etc/resolv.conf; echo --; ip -4 -o addr show eth0; cat /etc/hosts"])
        let parts = files.stdout.components(separatedBy: "--\n")
        #expect(parts.count == 3, "\(files)")
        guard parts.count == 3 else { return }
        #expect(parts[0] == "box.example\n")
        #expect(parts[1] == "nameserver 192.0.2.53\nsearch corp.example\noptions ndots:2\n")
        let ip = parts[2].split(separator: " ").drop { $0 != "inet" }.dropFirst().first.map { String($0.split(separator: "/")[0]) } ?? "?"
        #expect(parts[2].contains("127.0.0.1\tlocalhost\n") && parts[2].contains("10.9.8.7\tdb.local\n") && parts[2].hasSuffix("\(ip)\tbox.example\n"), "\(parts[2])")
        // The host's resolvers, less loopback ones, by default.
        let hostServers = ((try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? "").split(separator: "\n")
            .filter { $0.hasPrefix("nameserver ") && !$0.contains(" 127.") }.map { String($0) }
        let plain = try d.run(["--rm"], Self.image, ["grep", "^nameserver", "/etc/resolv.conf"]).stdout.split(separator: "\n").map(String.init)
        #expect(plain == (hostServers.isEmpty ? ["nameserver 8.8.8.8", "nameserver 8.8.4.4"] : hostServers))
    }

    /// What a network has set up on the host: veths on its bridge, addresses allocated,
    /// firewall and NAT rules for its subnet or naming it, namespaces, CNI cache entries.
    static func census(_ d: DaemonInstance, network: String) throws -> [String: Int] {
        let n = try Self.network(d, network)
        let bridge = n["bridge"] as? String ?? "?", subnet = IPv4Network(cidr: n["subnet"] as? String ?? "") ?? IPv4Network(base: IPv4Address(value: 0), prefixLength: 32)
        let veths = try execute("/sbin/ip", ["-o", "link", "show", "master", bridge]).stdout.split(separator: "\n").count
        let ipam = ((try? FileManager.default.contentsOfDirectory(atPath: d.dir + "/root/cni/ipam/" + network)) ?? [])
            .filter { $0 != "lock" && !$0.hasPrefix("last_reserved_ip") }.count
        let rules = try execute("/usr/sbin/iptables-save", []).stdout.split(separator: "\n").filter { line in
            line.contains("name: \\\"\(network)\\\"") || line.split(separator: " ").contains { word in
                IPv4Address(String(word.split(separator: "/")[0])).map { subnet.contains($0) && word.hasSuffix("/32") } ?? false
            }
        }.count
        let namespaces = HostCleanup.mounts(under: d.dir + "/state/netns").count
        let cache = ((try? FileManager.default.subpathsOfDirectory(atPath: d.dir + "/root/cni/results")) ?? []).filter { $0.hasSuffix(".json") }.count
        return ["veths": veths, "addresses": ipam, "rules": rules, "namespaces": namespaces, "cache": cache]
    }

    @Test("200 sequential run --rm -p leave no veth, address, rule, namespace or cache entry behind")
    func nothingLeftBehind() throws {
        let d = try Self.daemon()
        defer { d.stop() }
        #expect(try d.sctr(["network", "create", "churn"]).code == 0)
        let before = try Self.census(d, network: "churn")
        #expect(before.values.allSatisfy { $0 == 0 }, "\(before)")
        for i in 0..<200 {
            let r = try d.run(["--rm", "--network", "churn", "-p", "127.0.0.1::80", "-p", "127.0.0.1::53/udp"], Self.image, ["true"])
            guard r.code == 0 else { Issue.record("run \(i): \(r)"); break }
        }
        try eventually("the last run is removed") { try d.containers().isEmpty }
        let after = try Self.census(d, network: "churn")
        #expect(after == before, "\(after)")
    }

    @Test("after kill -9 of the daemon, 10 networked containers still answer; removing them leaves nothing")
    func survivesDaemonCrash() throws {
        let d = try Self.daemon()
        defer { d.stop() }
        #expect(try d.sctr(["network", "create", "steady"]).code == 0)
        for i in 0..<10 { #expect(try Self.web(d, ["--name", "w\(i)", "--network", "steady", "-p", "127.0.0.1::80"]).code == 0) }
        let ports = try (0..<10).map { try d.sctr(["port", "w\($0)", "80"]).stdout.split(separator: ":").last.map { String($0.dropLast()) } ?? "" }
        d.crash()
        try d.start()
        for (i, port) in ports.enumerated() {
            let name = String((try d.inspect("w\(i)")["id"] as? String ?? "").prefix(12)) + "\n"
            try eventually("w\(i) answers on \(port)") { try Self.fetch("http://127.0.0.1:\(port)/hostname") == name }
        }
        let byName = try d.run(["--rm", "--network", "steady"], Self.image, ["timeout", "5", "wget", "-q", "-O", "-", "http://w3/hostname"])
        #expect(byName.code == 0, "names still resolve: \(byName)")
        // The ports are held again: another container cannot take one.
        #expect(try Self.web(d, ["-p", "127.0.0.1:\(ports[0]):80"]).stderr.contains("port is already allocated"))
        #expect(try d.sctr(["rm", "-f"] + (0..<10).map { "w\($0)" }).code == 0)
        let after = try Self.census(d, network: "steady")
        #expect(after.values.allSatisfy { $0 == 0 }, "\(after)")
    }

    @Test("bad input: overlapping subnets, an unknown network, a malformed -p, a plugin that fails; nothing half set up")
    func badInput() throws {
        let d = try Self.daemon()
        defer { d.stop() }
        let subnet = try Self.network(d, "bridge")["subnet"] as? String ?? ""
        let overlap = try d.sctr(["network", "create", "--subnet", subnet, "clash"])
        #expect(overlap.code != 0 && overlap.stderr.contains("overlaps"), "\(overlap)")
        #expect(try d.sctr(["network", "create", "bridge"]).stderr.contains("already exists"))
        let unknown = try d.run(["--network", "nosuch"], Self.image, ["true"])
        #expect(unknown.code == 125 && unknown.stderr.contains("network \"nosuch\" not found"), "\(unknown)")
        let malformed = try d.run(["-p", "80:x"], Self.image, ["true"])
        #expect(malformed.code != 0 && malformed.stderr.contains("invalid argument \"80:x\""), "\(malformed)")
        // host-local refuses an address another container holds: the plugin's words reach the user.
        let used = try execute("/sbin/ip", ["-4", "-o", "addr"]).stdout + (try execute("/sbin/ip", ["-4", "route"]).stdout)
        let x = (20...99).shuffled().first { !used.contains("10.\($0).") } ?? 20
        #expect(try d.sctr(["network", "create", "--subnet", "10.\(x).7.0/24", "fixed"]).code == 0)
        #expect(try d.run(["-d", "--name", "first", "--network", "fixed", "--ip", "10.\(x).7.9"], Self.image, ["sleep", "1000"]).code == 0)
        let before = try Self.census(d, network: "fixed")
        let clash = try d.run(["-d", "--name", "second", "--network", "fixed", "--ip", "10.\(x).7.9", "-p", "127.0.0.1::80"], Self.image, ["sleep", "1000"])
        #expect(clash.code == 125 && clash.stderr.contains("plugin bridge failed (ADD)") && clash.stderr.contains("10.\(x).7.9"), "\(clash)")
        #expect(try Self.census(d, network: "fixed") == before)
        #expect(try d.containers().compactMap { $0["name"] as? String } == ["first"])
        let outside = try d.run(["--network", "fixed", "--ip", "10.9.9.9"], Self.image, ["true"])
        #expect(outside.code == 125 && outside.stderr.contains("not an address of network fixed"), "\(outside)")
        #expect(try d.sctr(["network", "rm", "bridge"]).stderr.contains("pre-defined"))
    }
}
