import API
import ArgumentParser
@preconcurrency import Glibc
import Foundation

struct Rename: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rename", abstract: "Rename a container.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The container.") var container: String
    @Argument(help: "Its new name.") var newName: String
    func run() throws { try global.client.call(Calls.ContainerRename.self, RenameParams(id: container, name: newName)) }
}

struct Update: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "update", abstract: "Update the limits or restart policy of one or more containers.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Memory limit (e.g. 64m).") var memory: ByteSize?
    @Option(help: "Number of CPUs.") var cpus: Double?
    @Option(help: "Tune container pids limit (set -1 for unlimited).") var pidsLimit: Int64?
    @Option(help: "Restart policy: no, on-failure[:max-retries], always, unless-stopped.") var restart: String?
    @Argument(help: "Containers.") var containers: [String]

    func validate() throws {
        if containers.isEmpty { throw ValidationError("\"update\" requires at least 1 argument") }
        if memory == nil && cpus == nil && pidsLimit == nil && restart == nil { throw ValidationError("you must provide one or more flags when using this command") }
    }
    func run() throws {
        let policy = try restart.map { try RestartPolicy(parsing: $0) }
        try forEach(containers) {
            var p = UpdateParams(id: $0)
            p.memory = memory?.bytes
            p.cpus = cpus
            p.pidsLimit = pidsLimit
            p.restart = policy
            _ = try global.client.call(Calls.ContainerUpdate.self, p)
            print($0)
        }
    }
}

struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "top", abstract: "Display the running processes of a container.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The container.") var container: String
    func run() throws {
        let top = try global.client.call(Calls.ContainerTop.self, ContainerParams(id: container))
        print(Table.render([top.titles] + top.processes), terminator: "")
    }
}

/// `sctr stats`: docker's table of CPU, memory, network, block I/O and pids, once
/// (`--no-stream`) or refreshed every second; `--format json` prints the raw samples.
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Display a live stream of containers' resource usage.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print one sample and exit.") var noStream = false
    @Option(help: "`json`: one sample object per line.") var format: String?
    @Argument(help: "Containers (default: every running one).") var containers: [String] = []

    func run() throws {
        let client = global.client
        let ids = containers.isEmpty ? try client.call(Calls.ContainerList.self, ListContainersParams()).containers.filter { $0.status == .running }.map(\.id) : containers
        var previous: [String: API.ContainerStats] = [:]
        while true {
            let samples = try ids.map { try client.call(Calls.ContainerStats.self, ContainerParams(id: $0)) }
            if format == "json" {
                for s in samples { print(String(decoding: try JSONEncoder().encode(s), as: UTF8.self)) }
            } else if !previous.isEmpty || !noStream {
                if !noStream && isatty(1) != 0 { print("\u{1B}[2J\u{1B}[H", terminator: "") }
                print(Table.render([["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]]
                                   + samples.map { StatsText.row($0, previous[$0.id]) }), terminator: "")
            }
            // The table's CPU share needs two samples: --no-stream takes a second one shortly.
            if noStream && (format == "json" || !previous.isEmpty) { return }
            previous = Dictionary(samples.map { ($0.id, $0) }) { a, _ in a }
            usleep(noStream ? 500_000 : 1_000_000)
        }
    }
}

enum StatsText {
    static func row(_ s: API.ContainerStats, _ before: API.ContainerStats?) -> [String] {
        var cpu = 0.0
        if let b = before, s.systemNanos > b.systemNanos, s.cpuNanos >= b.cpuNanos {
            cpu = Double(s.cpuNanos - b.cpuNanos) / Double(s.systemNanos - b.systemNanos) * Double(s.onlineCPUs) * 100
        }
        let mem = s.memoryLimit > 0 ? Double(s.memoryUsage) / Double(s.memoryLimit) * 100 : 0
        return [String(s.id.prefix(12)), s.name, String(format: "%.2f%%", cpu), "\(bytes(s.memoryUsage)) / \(bytes(s.memoryLimit))",
                String(format: "%.2f%%", mem), "\(decimal(s.netReceived)) / \(decimal(s.netSent))",
                "\(decimal(s.blockRead)) / \(decimal(s.blockWrite))", String(s.pids)]
    }

    /// Binary units, as docker shows memory: 1.5MiB.
    static func bytes(_ n: UInt64) -> String { scaled(Double(n), 1024, ["B", "KiB", "MiB", "GiB", "TiB"]) }
    /// Decimal units, as docker shows I/O: 1.2kB.
    static func decimal(_ n: UInt64) -> String { scaled(Double(n), 1000, ["B", "kB", "MB", "GB", "TB"]) }

    private static func scaled(_ value: Double, _ base: Double, _ units: [String]) -> String {
        var v = value, i = 0
        while v >= base && i < units.count - 1 { v /= base; i += 1 }
        return i == 0 ? "\(Int(v))\(units[0])" : String(format: "%.4g", v) + units[i]
    }
}

/// Columns padded to their widest cell, three spaces apart, as docker's tables.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let columns = rows.map(\.count).max() else { return "" }
        let widths = (0..<columns).map { c in rows.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i] + 3, withPad: " ", startingAt: 0) }.joined()
        }.joined(separator: "\n") + "\n"
    }
}

/// `sctr cp CONTAINER:SRC DEST` or `sctr cp SRC CONTAINER:DEST`.
struct Copy: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cp", abstract: "Copy files between a container and the host.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "CONTAINER:SRC_PATH or a host path.") var source: String
    @Argument(help: "A host path or CONTAINER:DEST_PATH.") var destination: String

    /// "name:/path" names a container path; a host path is anything with a slash before a colon.
    static func containerPath(_ text: String) -> (String, String)? {
        guard let colon = text.firstIndex(of: ":"), !text[..<colon].contains("/"), colon != text.startIndex else { return nil }
        let path = String(text[text.index(after: colon)...])
        return (String(text[..<colon]), path.hasPrefix("/") ? path : "/" + path)
    }

    func run() throws {
        let cwd = FileManager.default.currentDirectoryPath
        let absolute = { (p: String) in p.hasPrefix("/") ? p : cwd + "/" + p }
        switch (Copy.containerPath(source), Copy.containerPath(destination)) {
        case let ((id, path)?, nil):
            try global.client.call(Calls.ContainerCopy.self, CopyParams(id: id, containerPath: path, hostPath: absolute(destination), toContainer: false))
        case let (nil, (id, path)?):
            try global.client.call(Calls.ContainerCopy.self, CopyParams(id: id, containerPath: path, hostPath: absolute(source), toContainer: true))
        default:
            throw ValidationError("copying between containers or between host paths is not supported: one side must be CONTAINER:PATH")
        }
    }
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diff", abstract: "Inspect changes to files or directories on a container's filesystem.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The container.") var container: String
    func run() throws {
        for c in try global.client.call(Calls.ContainerDiff.self, ContainerParams(id: container)).changes { print("\(c.kind) \(c.path)") }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Export a container's filesystem as a tar archive (to stdout unless -o).")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Write to a file instead of stdout.") var output: String?
    @Argument(help: "The container.") var container: String

    func run() throws {
        let cwd = FileManager.default.currentDirectoryPath
        // The daemon writes the file (the socket is root-only: it is our host); stdout gets a
        // private temporary copy, removed after.
        let target = output.map { $0.hasPrefix("/") ? $0 : cwd + "/" + $0 } ?? NSTemporaryDirectory() + "sctr-export-\(getpid())-\(UUID().uuidString).tar"
        try global.client.call(Calls.ContainerExport.self, ExportParams(id: container, hostPath: target))
        guard output == nil else { return }
        defer { unlink(target) }
        guard let handle = FileHandle(forReadingAtPath: target) else { throw ValidationError("cannot read \(target)") }
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            FileHandle.standardOutput.write(chunk)
        }
    }
}
