import API
import ArgumentParser
@preconcurrency import Glibc
import Foundation

struct ListImages: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "images", abstract: "List images.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Only show image ids.") var quiet = false
    @Option(name: .shortAndLong, help: "Filter output (label=, reference=).") var filter: [String] = []
    @Option(help: "table, json, or a template ({{.Repository}}, {{.Tag}}, {{.ID}}, {{json .}}).") var format: String?

    func run() throws {
        let filters = try Filter.parse(filter)
        let images = try daemonCall { try global.client.call(Calls.ImageList.self, ListParams(filters: filters)) }.images
        func shortID(_ i: ImageInfo) -> String { String(i.digest.dropFirst(7).prefix(12)) }
        if quiet { for i in images { print(shortID(i)) }; return }
        let rows = images.map { i -> Row in
            let ref = try? ImageReferenceText.split(i.name)
            return Row(i, ["Repository": ref?.0 ?? i.name, "Tag": ref?.1 ?? "<none>", "ID": shortID(i), "Digest": i.digest,
                           "Size": Listing.humanSize(i.size), "CreatedAt": i.created ?? "", "Labels": ContainerText.labels(i.labels)])
        }
        try Listing(format: format).print(rows, columns: [("Repository", "REPOSITORY"), ("Tag", "TAG"), ("ID", "IMAGE ID"), ("Size", "SIZE")])
    }
}

/// "docker.io/library/busybox:latest" as ("docker.io/library/busybox", "latest").
enum ImageReferenceText {
    static func split(_ name: String) throws -> (String, String) {
        if let at = name.firstIndex(of: "@") { return (String(name[..<at]), "<none>") }
        let slash = name.lastIndex(of: "/") ?? name.startIndex
        guard let colon = name[slash...].lastIndex(of: ":") else { return (name, "<none>") }
        return (String(name[..<colon]), String(name[name.index(after: colon)...]))
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import", abstract: "Import images from an OCI layout, an oci-archive or a docker-archive.")
    @OptionGroup var global: GlobalOptions
    @Option(name: [.customShort("l"), .long], help: "Set metadata on the images (KEY=VALUE).") var label: [String] = []
    @Argument(help: "The layout directory or archive, on the daemon's host.") var path: String
    @Argument(help: "A name for the image (REPOSITORY[:TAG]); the source must hold one image.") var name: String?

    func run() throws {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let bar = isatty(2) != 0
        let result = try daemonCall {
            try global.client.call(Calls.ImageImport.self, ImportParams(path: absolute, labels: LabelFlags.parse(label), name: name)) { line in
                guard let p = line.notice(ImportProgress.self) else { return }
                FileHandle.standardError.write(Data((bar ? "\r\u{1b}[K" + Import.bar(p) : p.message + "\n").utf8))
            }
        }
        if bar { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) }
        for image in result.images { print("imported \(image.name) \(image.digest)") }
    }

    /// [#####-----] layer 2/5
    static func bar(_ p: ImportProgress) -> String {
        guard let done = p.current, let total = p.total, total > 0 else { return p.message }
        let filled = 20 * min(done, total) / total
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: 20 - filled) + "] " + p.message.split(separator: " ").prefix(2).joined(separator: " ")
    }
}

struct Tag: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tag", abstract: "Create a tag TARGET that refers to SOURCE.")
    @OptionGroup var global: GlobalOptions
    @Argument var source: String
    @Argument var target: String
    func run() throws { print(try daemonCall { try global.client.call(Calls.ImageTag.self, TagParams(source: source, target: target)) }.name) }
}

struct RemoveImages: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rmi", abstract: "Remove one or more images.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Images.") var images: [String]
    func validate() throws { if images.isEmpty { throw ValidationError("\"rmi\" requires at least 1 argument") } }
    func run() throws { try forEach(images) { try global.client.call(Calls.ImageRemove.self, NameParams(name: $0)); print("Untagged: \($0)") } }
}

struct VolumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "volume", abstract: "Manage volumes.",
                                                    subcommands: [Create.self, List.self, InspectVolumes.self, RemoveVolumes.self, Prune.self])

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove volumes no container uses.")
        @OptionGroup var global: GlobalOptions
        @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.") var force = false
        func run() throws {
            if !force {
                print("WARNING! This will remove all local volumes not used by at least one container. Are you sure you want to continue? [y/N] ", terminator: "")
                guard readLine()?.lowercased().hasPrefix("y") == true else { return }
            }
            let r = try daemonCall { try global.client.call(Calls.VolumePrune.self, Empty()) }
            if !r.volumesDeleted.isEmpty { print("Deleted Volumes:\n" + r.volumesDeleted.joined(separator: "\n") + "\n") }
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a volume.")
        @OptionGroup var global: GlobalOptions
        @Option(name: [.customShort("l"), .long], help: "Set metadata (KEY=VALUE).") var label: [String] = []
        @Argument var name: String
        func run() throws {
            print(try daemonCall { try global.client.call(Calls.VolumeCreate.self, VolumeCreateParams(name: name, labels: LabelFlags.parse(label))) }.name)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List volumes.", aliases: ["list"])
        @OptionGroup var global: GlobalOptions
        @Flag(name: .shortAndLong, help: "Only display volume names.") var quiet = false
        @Option(name: .shortAndLong, help: "Filter output (label=, name=).") var filter: [String] = []
        @Option(help: "table, json, or a template ({{.Name}}, {{json .}}).") var format: String?
        func run() throws {
            let volumes = try daemonCall { try global.client.call(Calls.VolumeList.self, ListParams(filters: try Filter.parse(filter))) }.volumes
            if quiet { for v in volumes { print(v.name) }; return }
            let rows = volumes.map { Row($0, ["Name": $0.name, "Driver": "local", "Mountpoint": $0.mountpoint, "Labels": ContainerText.labels($0.labels)]) }
            try Listing(format: format).print(rows, columns: [("Driver", "DRIVER"), ("Name", "VOLUME NAME")])
        }
    }

    struct InspectVolumes: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Display detailed information on volumes.")
        @OptionGroup var global: GlobalOptions
        @Argument var names: [String]
        func validate() throws { if names.isEmpty { throw ValidationError("\"volume inspect\" requires at least 1 argument") } }
        func run() throws {
            var found: [VolumeInfo] = []
            let failed = (try? forEach(names) { found.append(try global.client.call(Calls.VolumeInspect.self, NameParams(name: $0))) }) == nil
            print(Listing.json(found, pretty: true))
            if failed { throw CLIExit(code: 1) }
        }
    }

    struct RemoveVolumes: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove one or more volumes.")
        @OptionGroup var global: GlobalOptions
        @Argument var names: [String]
        func validate() throws { if names.isEmpty { throw ValidationError("\"volume rm\" requires at least 1 argument") } }
        func run() throws { try forEach(names) { try global.client.call(Calls.VolumeRemove.self, NameParams(name: $0)); print($0) } }
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "Get real time events from the daemon (and missed ones with --since).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Replay from a sequence number or a time (RFC 3339, Unix seconds, or relative: 10m).") var since: String?
    @Option(name: .shortAndLong, help: "Filter output (type=, action=, id=, name=).") var filter: [String] = []
    @Option(help: "json (one event per line) or a template.") var format: String?

    func run() throws {
        let from: EventSince? = try since.map { text in
            if let n = Int64(text), !text.contains(".") && text.count < 10 { return .sequence(n) }
            guard let t = TimeArgument.rfc3339(text) else { throw fail("--since: \(text) is not a sequence number or a time", code: 125) }
            return .time(t)
        }
        let client = global.client
        let socket = try daemonCall { try client.connect() }
        defer { socket.close() }
        let output = Listing(format: format)
        _ = try daemonCall { try client.call(Calls.EventsSubscribe.self, SubscribeParams(since: from, filters: try Filter.parse(filter)), on: socket) }
        while let bytes = socket.readLine() {
            guard let line = ServerLine(bytes), let e = line.notice(API.Event.self) else { continue }
            if format == nil {
                let attributes = e.attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
                print("\(e.time) \(e.type.rawValue) \(e.action.rawValue) \(e.id) (\(attributes))")
            } else {
                try output.print([Row(e, ["Seq": String(e.seq), "Time": e.time, "Type": e.type.rawValue, "Action": e.action.rawValue, "ID": e.id,
                                          "Namespace": e.namespace])], columns: [])
            }
            fflush(stdout)
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Show the client's and the daemon's versions.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "json") var format: String?
    func run() throws {
        let v = try daemonCall { try global.client.call(Calls.SystemVersion.self, Empty()) }
        if format == "json" { print(Listing.json(v)) } else { print("scontainerd \(v.version) (protocol \(v.protocol))") }
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Display system-wide information.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "json") var format: String?
    func run() throws {
        let i = try daemonCall { try global.client.call(Calls.SystemInfo.self, Empty()) }
        if format == "json" { print(Listing.json(i, pretty: true)); return }
        print("""
            Namespace: \(i.namespace)
            Containers: \(i.containers) (running \(i.running))
            Images: \(i.images)
            Volumes: \(i.volumes)
            Root: \(i.root)
            State: \(i.state)
            Runtime: \(i.runtime)
            Shim: \(i.shim)
            """)
    }
}

struct NamespaceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "namespace", abstract: "List namespaces.", subcommands: [List.self])
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the namespaces that hold anything.", aliases: ["list"])
        @OptionGroup var global: GlobalOptions
        func run() throws { for n in try daemonCall({ try global.client.call(Calls.NamespaceList.self, Empty()) }).namespaces { print(n) } }
    }
}

struct SystemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "system", abstract: "Manage the daemon's store.", subcommands: [Prune.self, DiskUsage.self])

    struct DiskUsage: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "df", abstract: "Show the store's disk usage.")
        @OptionGroup var global: GlobalOptions
        func run() throws {
            let u = try daemonCall { try global.client.call(Calls.SystemDiskUsage.self, Empty()) }
            let size = { (n: Int64) in StatsText.bytes(UInt64(max(0, n))) }
            print(Table.render([["TYPE", "TOTAL", "SIZE", "RECLAIMABLE"],
                                ["Images", String(u.images), size(u.imagesBytes), size(u.reclaimableImagesBytes)],
                                ["Containers", String(u.containers), size(u.containersBytes), ""],
                                ["Local Volumes", String(u.volumes), size(u.volumesBytes), ""]]), terminator: "")
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove stopped containers, unused images and (with --volumes) volumes, then unreferenced content.")
        @OptionGroup var global: GlobalOptions
        @Flag(name: .shortAndLong, help: "Remove every image no container uses, not only unnamed ones.") var all = false
        @Flag(help: "Prune volumes no container uses.") var volumes = false
        @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.") var force = false

        func run() throws {
            if !force {
                print("WARNING! This will remove all stopped containers\(all ? ", all images without a container" : ", unnamed images")\(volumes ? ", unused volumes" : ""). Are you sure you want to continue? [y/N] ", terminator: "")
                guard readLine()?.lowercased().hasPrefix("y") == true else { return }
            }
            let r = try daemonCall { try global.client.call(Calls.SystemPrune.self, PruneParams(all: all ? true : nil, volumes: volumes ? true : nil)) }
            for (title, items) in [("Deleted Containers:", r.containersDeleted), ("Deleted Images:", r.imagesDeleted), ("Deleted Volumes:", r.volumesDeleted)] where !items.isEmpty {
                print(title + "\n" + items.joined(separator: "\n") + "\n")
            }
            print("Total reclaimed space: \(StatsText.bytes(UInt64(max(0, r.spaceReclaimed))))")
        }
    }
}

struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "image", abstract: "Manage images.", subcommands: [Prune.self])

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove unused images (unnamed ones, or with -a every one no container uses).")
        @OptionGroup var global: GlobalOptions
        @Flag(name: .shortAndLong, help: "Remove every image no container uses.") var all = false
        @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.") var force = false
        func run() throws {
            if !force {
                print("WARNING! This will remove \(all ? "all images without at least one container associated to them" : "all dangling images"). Are you sure you want to continue? [y/N] ", terminator: "")
                guard readLine()?.lowercased().hasPrefix("y") == true else { return }
            }
            let r = try daemonCall { try global.client.call(Calls.ImagePrune.self, ImagePruneParams(all: all ? true : nil)) }
            if !r.imagesDeleted.isEmpty { print("Deleted Images:\n" + r.imagesDeleted.joined(separator: "\n") + "\n") }
            print("Total reclaimed space: \(StatsText.bytes(UInt64(max(0, r.spaceReclaimed))))")
        }
    }
}
