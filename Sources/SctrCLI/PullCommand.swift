import API
import ArgumentParser
import Foundation
import OCI

/// `sctr pull NAME[:TAG|@DIGEST]`, with docker's progress: one line per blob, redrawn in place
/// on a terminal.
struct Pull: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pull", abstract: "Download an image from a registry.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Set platform if server is multi-platform capable (os/arch[/variant]).") var platform: String?
    @Flag(name: .shortAndLong, help: "Suppress verbose output.") var quiet = false
    @Argument(help: "NAME[:TAG|@DIGEST]") var reference: String

    func run() throws {
        let terminal = isatty(1) != 0 && !quiet
        var order: [String] = []
        var lines: [String: String] = [:]
        let result = try daemonCall {
            try global.client.call(Calls.ImagePull.self, PullParams(reference: reference, platform: platform)) { line in
                guard !quiet, let p = line.notice(ImportProgress.self), let digest = p.digest else { return }
                let id = String(digest.dropFirst(7).prefix(12))
                if lines[id] == nil { order.append(id) }
                let done = p.bytes ?? 0, total = p.totalBytes ?? 0
                let text = done >= total ? "\(id): Pull complete" : "\(id): Downloading \(Pull.bar(done, total))"
                if terminal {
                    let up = order.count - 1 - order.firstIndex(of: id)!
                    if lines[id] == nil { print(text) } else { print("\u{1b}[\(up + 1)A\r\u{1b}[K\(text)\u{1b}[\(up + 1)B\r", terminator: "") }
                    FileHandle.standardOutput.synchronizeFile()
                } else if done >= total {
                    print(text)
                }
                lines[id] = text
            }
        }
        guard let image = result.images.first else { return }
        if !quiet { print("Digest: \(image.digest)\nStatus: Downloaded image for \(image.name)") }
        print(image.name)
    }

    /// `[=====>     ]  1.2MB/5.0MB`
    static func bar(_ done: Int64, _ total: Int64) -> String {
        let width = 40, filled = total > 0 ? Int(Int64(width) * min(done, total) / total) : 0
        let arrow = String(repeating: "=", count: max(0, filled - 1)) + (filled > 0 ? ">" : "")
        return "[" + arrow + String(repeating: " ", count: width - arrow.count) + "] " + size(done) + "/" + size(total)
    }

    static func size(_ n: Int64) -> String {
        n >= 1_000_000 ? String(format: "%.1fMB", Double(n) / 1e6) : n >= 1000 ? String(format: "%.1fkB", Double(n) / 1e3) : "\(n)B"
    }
}

/// `sctr login [-u USER] [-p PASS | --password-stdin] [SERVER]`: checked by the registry, kept
/// by the daemon in docker's config.json.
struct Login: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "login", abstract: "Log in to a registry.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Username.") var username: String?
    @Option(name: .shortAndLong, help: "Password.") var password: String?
    @Flag(help: "Take the password from stdin.") var passwordStdin = false
    @Argument(help: "SERVER (default docker.io)") var server = "docker.io"

    func run() throws {
        guard let username else { throw ValidationError("login: --username is required (no terminal prompt here)") }
        var secret = password ?? ""
        if passwordStdin { secret = (readLine(strippingNewline: true) ?? "") }
        guard !secret.isEmpty else { throw ValidationError("login: a password (--password or --password-stdin)") }
        _ = try daemonCall { try global.client.call(Calls.RegistryLogin.self, LoginParams(registry: server, username: username, password: secret)) }
        print("Login Succeeded")
    }
}

struct Logout: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logout", abstract: "Log out from a registry.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "SERVER (default docker.io)") var server = "docker.io"
    func run() throws {
        _ = try daemonCall { try global.client.call(Calls.RegistryLogout.self, LogoutParams(registry: server)) }
        print("Removing login credentials for \(server)")
    }
}

/// `sctr push NAME[:TAG]`.
struct Push: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "push", abstract: "Upload an image to a registry.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Suppress verbose output.") var quiet = false
    @Argument(help: "NAME[:TAG]") var reference: String
    func run() throws {
        let image = try daemonCall {
            try global.client.call(Calls.ImagePush.self, PushParams(reference: reference)) { line in
                guard !quiet, let p = line.notice(ImportProgress.self), let digest = p.digest, p.bytes == p.totalBytes else { return }
                print("\(digest.dropFirst(7).prefix(12)): Pushed")
            }
        }
        print("\(image.name): digest: \(image.digest) size: \(image.size)")
    }
}

/// `sctr commit [-m MSG] [-a AUTHOR] [-c INSTR]… CONTAINER [REPOSITORY[:TAG]]`.
struct Commit: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "commit", abstract: "Create a new image from a container's changes.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Commit message.") var message: String?
    @Option(name: .shortAndLong, help: "Author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\").") var author: String?
    @Option(name: .shortAndLong, help: "Apply Dockerfile instruction to the created image.") var change: [String] = []
    @Option(name: .shortAndLong, help: "Pause container during commit (true|false).") var pause = true
    @Argument var container: String
    @Argument var reference: String?
    func run() throws {
        var p = CommitParams(id: container)
        p.reference = reference; p.message = message; p.author = author
        p.changes = change.isEmpty ? nil : change
        p.pause = pause
        let image = try daemonCall { try global.client.call(Calls.ContainerCommit.self, p) }
        print(image.digest)
    }
}

/// `sctr save [-o FILE] [--format docker-archive|oci-archive] IMAGE...`; `sctr load -i FILE`.
struct Save: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "save", abstract: "Save one or more images to a tar archive.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Write to a file.") var output: String
    @Option(help: "docker-archive (default) or oci-archive.") var format = "docker-archive"
    @Argument var images: [String]
    func validate() throws { if images.isEmpty { throw ValidationError("\"save\" requires at least 1 argument") } }
    func run() throws {
        let path = output.hasPrefix("/") ? output : FileManager.default.currentDirectoryPath + "/" + output
        _ = try daemonCall { try global.client.call(Calls.ImageSave.self, SaveParams(names: images, hostPath: path, format: format)) }
    }
}

struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "load", abstract: "Load images from a tar archive (docker-archive, oci-archive).")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Read from a tar archive file.") var input: String
    func run() throws {
        let path = input.hasPrefix("/") ? input : FileManager.default.currentDirectoryPath + "/" + input
        let result = try daemonCall { try global.client.call(Calls.ImageImport.self, ImportParams(path: path)) }
        for image in result.images { print("Loaded image: \(image.name)") }
    }
}

/// `sctr history IMAGE`: the steps in the image's config, newest first, with the layer sizes.
struct History: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "Show the history of an image.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Don't truncate output.") var noTrunc = false
    @Flag(name: .shortAndLong, help: "Only show image IDs.") var quiet = false
    @Argument var image: String
    func run() throws {
        let detail = try daemonCall { try global.client.call(Calls.ImageInspect.self, NameParams(name: image)) }
        var layers = detail.manifest.layers.map(\.size)[...]
        let steps = detail.config.history ?? detail.manifest.layers.map { _ in ImageConfiguration.History() }
        var rows: [(String, String, String, String, String)] = []
        for (i, step) in steps.enumerated() {
            let size = step.empty_layer == true ? 0 : (layers.popFirst() ?? 0)
            let id = i == steps.count - 1 ? String(detail.image.digest.dropFirst(7).prefix(12)) : "<missing>"
            var by = step.created_by ?? ""
            if !noTrunc && by.count > 45 { by = String(by.prefix(44)) + "…" }
            rows.append((id, step.created ?? "", by, Pull.size(size), step.comment ?? ""))
        }
        if quiet { for r in rows.reversed() { print(r.0) }; return }
        print(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map { $0.padding(toLength: 14, withPad: " ", startingAt: 0) }.joined(separator: " "))
        for r in rows.reversed() { print("\(r.0.padding(toLength: 14, withPad: " ", startingAt: 0)) \(r.1.padding(toLength: 22, withPad: " ", startingAt: 0)) \(r.2.padding(toLength: 46, withPad: " ", startingAt: 0)) \(r.3.padding(toLength: 8, withPad: " ", startingAt: 0)) \(r.4)") }
    }
}
