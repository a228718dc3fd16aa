import API

/// The /etc/hosts, /etc/resolv.conf and /etc/hostname a container gets, as docker writes them.
enum EtcFiles {
    /// localhost lines, `--add-host` entries, then the container's own addresses under its name.
    static func hosts(hostname: String, aliases: [String] = [], addresses: [String], extra: [String]) -> String {
        var lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
                     "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters"]
        for entry in extra {
            guard let colon = entry.firstIndex(of: ":") else { continue }
            lines.append("\(entry[entry.index(after: colon)...])\t\(entry[..<colon])")
        }
        let names = ([hostname] + aliases.filter { $0 != hostname }).joined(separator: " ")
        for a in addresses { lines.append("\(a)\t\(names)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The host's resolver file with its loopback nameservers dropped (unreachable from a
    /// network namespace), docker's public fallback if none remain. A user network's own DNS
    /// server (`nameservers`, which forwards what it does not know to the host's) replaces the
    /// host's; `--dns`, `--dns-search`, `--dns-option` replace their lines (`--dns` after the
    /// network's server).
    static func resolvConf(host: String, nameservers: [String], options o: CreateOptions) -> String {
        var servers: [String] = [], search: [String] = [], options: [String] = []
        for line in host.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let key = f.first else { continue }
            switch key {
            case "nameserver" where f.count > 1 && !isLoopback(f[1]): servers.append(f[1])
            case "search", "domain": search = Array(f.dropFirst())
            case "options": options += f.dropFirst()
            default: break
            }
        }
        if !nameservers.isEmpty { servers = [] }
        if let dns = o.dns, !dns.isEmpty { servers = dns }
        if servers.isEmpty && nameservers.isEmpty { servers = ["8.8.8.8", "8.8.4.4"] }
        if let s = o.dnsSearch, !s.isEmpty { search = s }
        if let opts = o.dnsOptions, !opts.isEmpty { options = opts }
        var lines = (nameservers + servers).map { "nameserver " + $0 }
        if !search.isEmpty { lines.append("search " + search.joined(separator: " ")) }
        if !options.isEmpty { lines.append("options " + options.joined(separator: " ")) }
        return lines.joined(separator: "\n") + "\n"
    }

    static func isLoopback(_ address: String) -> Bool { address.hasPrefix("127.") || address == "::1" }
}
