import CLinux
@preconcurrency import Glibc
import Foundation
import RPC

/// The verbs: each is a request (or a few) to the daemon and a rendering of the answer.
struct Client {
    let socketPath: String
    let json: Bool

    func connect() throws -> LineSocket { try LineSocket.connect(socketPath) }

    /// One request; progress and events before the reply go to `onMessage`.
    @discardableResult
    func call(_ method: String, _ params: [String: Any] = [:], onMessage: (([String: Any]) -> Void)? = nil) throws -> [String: Any] {
        let socket = try connect()
        defer { socket.close() }
        socket.write(["id": 1, "method": method, "params": params])
        while let message = socket.readJSON() {
            if message["id"] as? Int == 1, message["result"] != nil || message["error"] != nil {
                if let error = message["error"] as? [String: Any] {
                    throw DaemonError(code: error["code"] as? String ?? "error", description: error["message"] as? String ?? "failed")
                }
                return message["result"] as? [String: Any] ?? [:]
            }
            onMessage?(message)
        }
        throw DaemonError(code: "unavailable", description: "the daemon closed the connection")
    }

    func run(_ verb: String, _ args: [String]) throws -> Int32 {
        switch verb {
        case "version": return output(try call("system.version")) { "scontainerd \($0["version"] ?? "") (protocol \($0["protocol"] ?? ""))" }
        case "info": return output(try call("system.info")) { info in info.keys.sorted().map { "\($0): \(info[$0]!)" }.joined(separator: "\n") }
        case "images":
            let images = try call("image.list")["images"] as? [[String: Any]] ?? []
            return table(images, ["NAME": "name", "DIGEST": "digest", "LAYERS": "layers", "SIZE": "size"], order: ["NAME", "DIGEST", "LAYERS", "SIZE"]) { key, value in
                key == "DIGEST" ? String("\(value)".dropFirst(7).prefix(12)) : key == "SIZE" ? Client.humanSize(value as? Int ?? 0) : "\(value)"
            }
        case "import":
            guard let path = args.first else { throw usage("import PATH") }
            let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            let progress = isatty(2) != 0
            let result = try call("image.import", ["path": absolute]) { message in
                guard let text = message["progress"] as? String else { return }
                FileHandle.standardError.write(Data((progress ? "\r\u{1b}[K" + Client.bar(text) : text + "\n").utf8))
            }
            if progress { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) }
            return output(result) { ($0["images"] as? [[String: Any]] ?? []).map { "imported \($0["name"] ?? "") \($0["digest"] ?? "")" }.joined(separator: "\n") }
        case "tag":
            guard args.count == 2 else { throw usage("tag SOURCE TARGET") }
            return output(try call("image.tag", ["source": args[0], "target": args[1]])) { "\($0["name"] ?? "")" }
        case "rmi":
            guard !args.isEmpty else { throw usage("rmi IMAGE...") }
            for image in args { try call("image.remove", ["name": image]); print(image) }
            return 0
        case "run", "create":
            return try RunCommand(client: self, create: verb == "create").run(args)
        case "start", "pause", "unpause", "wait":
            guard let id = args.first else { throw usage("\(verb) ID") }
            let method = ["start": "container.start", "pause": "container.pause", "unpause": "container.resume", "wait": "container.wait"][verb]!
            let result = try call(method, ["id": id])
            if verb == "wait" { print(result["exitCode"] ?? -1) } else { print(id) }
            return 0
        case "ps":
            let all = args.contains("-a") || args.contains("--all")
            let containers = try call("container.list", ["all": all])["containers"] as? [[String: Any]] ?? []
            return table(containers, ["ID": "id", "NAME": "name", "IMAGE": "image", "STATUS": "status", "EXIT": "exitCode"],
                         order: ["ID", "NAME", "IMAGE", "STATUS", "EXIT"]) { key, value in key == "ID" ? String("\(value)".prefix(12)) : "\(value)" }
        case "inspect":
            guard let ref = args.first else { throw usage("inspect ID|IMAGE") }
            let result: [String: Any]
            do { result = try call("container.inspect", ["id": ref]) } catch let e as DaemonError where e.code == "not-found" {
                result = try call("image.inspect", ["name": ref])
            }
            print(Client.pretty(result))
            return 0
        case "logs":
            return try logs(args)
        case "exec":
            return try ExecCommand(client: self).run(args)
        case "stop":
            var rest = args[...]
            var timeout = 10.0
            if rest.first == "-t" || rest.first == "--time" { rest.removeFirst(); timeout = Double(rest.popFirst() ?? "") ?? 10 }
            guard !rest.isEmpty else { throw usage("stop [-t SECONDS] ID...") }
            for id in rest { try call("container.stop", ["id": id, "timeout": timeout]); print(id) }
            return 0
        case "kill":
            var rest = args[...]
            var signal = "SIGKILL"
            if rest.first == "-s" || rest.first == "--signal" { rest.removeFirst(); signal = rest.popFirst() ?? signal }
            guard !rest.isEmpty else { throw usage("kill [-s SIGNAL] ID...") }
            for id in rest { try call("container.kill", ["id": id, "signal": signal]); print(id) }
            return 0
        case "rm":
            let force = args.contains("-f") || args.contains("--force")
            let ids = args.filter { !$0.hasPrefix("-") }
            guard !ids.isEmpty else { throw usage("rm [-f] ID...") }
            for id in ids { try call("container.remove", ["id": id, "force": force]); print(id) }
            return 0
        case "volume":
            return try volume(args)
        case "events":
            let socket = try connect()
            socket.write(["id": 1, "method": "events.subscribe"])
            while let line = socket.readLine() {
                guard let message = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any], let event = message["event"] as? [String: Any] else { continue }
                if json { print(String(decoding: line, as: UTF8.self)) } else {
                    print("\(event["time"] ?? "") \(event["type"] ?? "") \(event["action"] ?? "") \(event["id"] ?? "") \(event["attributes"].map { Client.compact($0) } ?? "")")
                }
                fflush(stdout)
            }
            return 0
        default:
            throw usage("unknown command \(verb)")
        }
    }

    private func logs(_ args: [String]) throws -> Int32 {
        var follow = false, tail: Int?, id: String?
        var rest = args[...]
        while let a = rest.popFirst() {
            switch a {
            case "-f", "--follow": follow = true
            case "--tail", "-n": tail = Int(rest.popFirst() ?? "")
            default: id = a
            }
        }
        guard let id else { throw usage("logs [-f] [--tail N] ID") }
        var params: [String: Any] = ["id": id, "follow": follow]
        if let tail { params["tail"] = tail }
        try call("container.logs", params) { message in
            guard let record = message["record"] as? [String: Any] else { return }
            if json {
                if let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) { print(String(decoding: data, as: UTF8.self)) }
                return
            }
            let bytes = (record["log"] as? String).map { Data($0.utf8) } ?? (record["b64"] as? String).flatMap { Data(base64Encoded: $0) } ?? Data()
            (record["stream"] as? String == "stderr" ? FileHandle.standardError : FileHandle.standardOutput).write(bytes)
        }
        return 0
    }

    private func volume(_ args: [String]) throws -> Int32 {
        switch (args.first, args.count) {
        case ("create", 2): return output(try call("volume.create", ["name": args[1]])) { "\($0["name"] ?? "")" }
        case ("ls", 1), ("list", 1):
            let volumes = try call("volume.list")["volumes"] as? [[String: Any]] ?? []
            return table(volumes, ["NAME": "name", "MOUNTPOINT": "mountpoint"], order: ["NAME", "MOUNTPOINT"]) { "\($1)" }
        case ("inspect", 2): print(Client.pretty(try call("volume.inspect", ["name": args[1]]))); return 0
        case ("rm", 2): try call("volume.remove", ["name": args[1]]); print(args[1]); return 0
        default: throw usage("volume create NAME | ls | inspect NAME | rm NAME")
        }
    }

    func usage(_ text: String) -> DaemonError { DaemonError(code: "usage", description: "usage: sctr \(text)") }

    private func output(_ result: [String: Any], _ human: ([String: Any]) -> String) -> Int32 {
        print(json ? Client.pretty(result) : human(result))
        return 0
    }

    private func table(_ rows: [[String: Any]], _ columns: [String: String], order: [String], cell: (String, Any) -> String) -> Int32 {
        if json { print(Client.pretty(rows)); return 0 }
        let cells = rows.map { row in order.map { key in row[columns[key]!].map { cell(key, $0) } ?? "" } }
        let widths = order.indices.map { i in max(order[i].count, cells.map { $0[i].count }.max() ?? 0) }
        func line(_ values: [String]) -> String {
            values.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        print(line(order))
        for row in cells { print(line(row)) }
        return 0
    }

    static func pretty(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys]) else { return "\(value)" }
        return String(decoding: data, as: UTF8.self)
    }

    static func compact(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) else { return "\(value)" }
        return String(decoding: data, as: UTF8.self)
    }

    static func humanSize(_ bytes: Int) -> String {
        let units = ["B", "kB", "MB", "GB"]
        var v = Double(bytes), u = 0
        while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
        return u == 0 ? "\(bytes)B" : "\((v * 10).rounded() / 10)\(units[u])"
    }

    /// "layer 2/5 sha256:… 1234" becomes a bar: [#####-----] layer 2/5.
    static func bar(_ text: String) -> String {
        let words = text.split(separator: " ")
        guard words.count >= 2, let slash = words[1].firstIndex(of: "/"), let done = Int(words[1][..<slash]),
              let total = Int(words[1][words[1].index(after: slash)...]), total > 0 else { return text }
        let filled = 20 * done / total
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: 20 - filled) + "] " + words.prefix(2).joined(separator: " ")
    }
}
