import Foundation
import RPC
import ImageStore
import OCI

/// One request's handling: the method table of the RPC (docs/scontainerd-rpc.md).
struct Methods {
    let daemon: Daemon
    let socket: LineSocket
    let id: Any

    enum Outcome {
        /// Send this as the result.
        case result(Any)
        /// The method answered itself and keeps the connection (exec, attach).
        case handedOff
        /// Replied already; later lines on the connection are read as requests again.
        case streaming
    }

    func call(_ method: String, _ params: [String: Any]) throws -> Outcome {
        switch method {
        case "system.version":
            return .result(["version": Daemon.version, "protocol": Daemon.protocolVersion])
        case "system.info":
            let containers = try daemon.metadata.containers()
            return .result(["root": daemon.config.root, "state": daemon.config.state, "runtime": daemon.config.runtime,
                            "shim": daemon.config.shim, "containers": containers.count,
                            "running": containers.filter { $0.status == "running" }.count, "images": try daemon.metadata.images().count])
        case "image.import":
            let path = try string(params, "path")
            let images = try daemon.importImages(path: path) { message in
                socket.write(["id": id, "progress": message])
            }
            return .result(["images": images])
        case "image.list":
            let list = try daemon.metadata.images().compactMap { entry -> [String: Any]? in
                guard let image = try? daemon.storedImage(manifestDigest: entry.manifestDigest, name: entry.name) else { return nil }
                var summary = daemon.imageSummary(image, name: entry.name)
                summary["created"] = entry.created
                return summary
            }
            return .result(["images": list])
        case "image.inspect":
            let image = try daemon.findImage(try string(params, "name"))
            var info = daemon.imageSummary(image, name: image.name ?? image.manifestDigest)
            info["manifest"] = try JSONSerialization.jsonObject(with: daemon.content.read(image.manifestDigest))
            info["config"] = try JSONSerialization.jsonObject(with: daemon.content.read(image.manifest.config.digest))
            return .result(info)
        case "image.tag":
            let image = try daemon.findImage(try string(params, "source"))
            let target = ImageImporter.normalize(try string(params, "target"))
            try daemon.metadata.putImage(name: target, manifestDigest: image.manifestDigest)
            daemon.events.publish("image", "tag", id: image.manifestDigest, attributes: ["name": target])
            return .result(["name": target])
        case "image.remove":
            try daemon.removeImage(try string(params, "name"))
            return .result([:])
        case "container.create", "container.run":
            let options = try decode(CreateOptions.self, params)
            let c = try daemon.createContainer(options)
            if method == "container.run" {
                do { try daemon.startContainer(c.id) } catch {
                    try? daemon.removeContainer(c.id, force: true)
                    throw error
                }
            }
            return .result(["id": c.id, "name": c.name])
        case "container.start":
            try daemon.startContainer(try string(params, "id"))
            return .result([:])
        case "container.stop":
            let c = try daemon.row(try string(params, "id"))
            let timeout = params["timeout"] as? Double ?? 10
            let image = try? daemon.findImage(c.manifestDigest)
            try daemon.stopContainer(c.id, timeout: timeout, signal: image?.config.config?.StopSignal ?? "SIGTERM")
            return .result(daemon.inspect(try daemon.row(c.id)))
        case "container.kill":
            let c = try daemon.row(try string(params, "id"))
            guard c.status == "running" || c.status == "paused" || c.status == "created" else { throw RPCError.precondition("container \(c.name) is \(c.status)") }
            var shimParams: [String: Any] = ["signal": params["signal"] ?? "SIGKILL"]
            if params["all"] as? Bool == true { shimParams["all"] = true }
            try daemon.shim(c.id).call("kill", shimParams)
            return .result([:])
        case "container.pause", "container.resume":
            let c = try daemon.row(try string(params, "id"))
            guard c.status == (method == "container.pause" ? "running" : "paused") else {
                throw RPCError.precondition("container \(c.name) is \(c.status)")
            }
            try daemon.shim(c.id).call(method == "container.pause" ? "pause" : "resume")
            try daemon.metadata.setStatus(c.id, method == "container.pause" ? "paused" : "running")
            daemon.events.publish("container", method == "container.pause" ? "pause" : "unpause", id: c.id, attributes: ["name": c.name])
            return .result([:])
        case "container.wait":
            let c = try daemon.row(try string(params, "id"))
            if c.status == "created" || c.status == "running" || c.status == "paused" {
                _ = try? daemon.shim(c.id).call("wait")
                _ = daemon.waitForExit(c.id, seconds: 10)
            }
            let after = try daemon.metadata.container(c.id)
            return .result(["exitCode": after?.exitCode ?? -1, "oomKilled": after?.oomKilled ?? false] as [String: Any])
        case "container.inspect":
            return .result(daemon.inspect(try daemon.row(try string(params, "id"))))
        case "container.list":
            let all = params["all"] as? Bool ?? false
            let list = try daemon.metadata.containers().filter { all || $0.status == "running" || $0.status == "paused" }
            return .result(["containers": list.map { daemon.inspect($0) }])
        case "container.remove":
            try daemon.removeContainer(try string(params, "id"), force: params["force"] as? Bool ?? false)
            return .result([:])
        case "container.logs":
            let c = try daemon.row(try string(params, "id"))
            var shimParams: [String: Any] = ["follow": params["follow"] as? Bool ?? false]
            if let tail = params["tail"] as? Int { shimParams["tail"] = tail }
            let end = try daemon.shim(c.id).call("logs", shimParams) { event in socket.write(event) }
            return .result(end)
        case "container.attach":
            let c = try daemon.row(try string(params, "id"))
            try tunnel(c.id, ["id": id, "method": "attach", "params": [:] as [String: Any]], endsOnExit: true)
            return .handedOff
        case "container.exec":
            let c = try daemon.row(try string(params, "id"))
            guard c.status == "running" else { throw RPCError.precondition("container \(c.name) is \(c.status)") }
            let process = try execProcess(c, params)
            try tunnel(c.id, ["id": id, "method": "exec",
                              "params": ["process": process, "tty": params["tty"] as? Bool ?? false, "stdin": params["stdin"] as? Bool ?? false]],
                       endsOnExit: false)
            return .handedOff
        case "volume.create":
            let name = try string(params, "name")
            guard Daemon.validName(name) else { throw RPCError.params("name: letters, digits, '_', '.', '-'") }
            try FileManager.default.createDirectory(atPath: daemon.volumeDir(name), withIntermediateDirectories: true)
            if try daemon.metadata.putVolume(name) { daemon.events.publish("volume", "create", id: name) }
            return .result(volumeInfo(name))
        case "volume.list":
            return .result(["volumes": try daemon.metadata.volumes().map { volumeInfo($0.name, created: $0.created) }])
        case "volume.inspect":
            let name = try string(params, "name")
            guard let v = try daemon.metadata.volumes().first(where: { $0.name == name }) else { throw RPCError.notFound("no such volume: \(name)") }
            return .result(volumeInfo(v.name, created: v.created))
        case "volume.remove":
            let name = try string(params, "name")
            if let user = try daemon.metadata.containers().first(where: { ($0.options.volumes ?? []).contains { $0.hasPrefix(name + ":") } }) {
                throw RPCError.conflict("volume \(name) is used by container \(user.name)")
            }
            guard try daemon.metadata.removeVolume(name) else { throw RPCError.notFound("no such volume: \(name)") }
            try? FileManager.default.removeItem(atPath: (daemon.volumeDir(name) as NSString).deletingLastPathComponent)
            daemon.events.publish("volume", "destroy", id: name)
            return .result([:])
        case "events.subscribe":
            socket.write(["id": id, "result": ["subscribed": true]])
            daemon.events.subscribe(socket)
            return .streaming
        default:
            throw RPCError("unknown-method", "unknown method \(method)")
        }
    }

    private func volumeInfo(_ name: String, created: String? = nil) -> [String: Any] {
        var info: [String: Any] = ["name": name, "mountpoint": daemon.volumeDir(name)]
        if let created { info["created"] = created }
        return info
    }

    /// The exec'd process: the container's env, cwd and user unless the request overrides them.
    private func execProcess(_ c: Metadata.ContainerRow, _ params: [String: Any]) throws -> [String: Any] {
        guard let cmd = params["cmd"] as? [String], !cmd.isEmpty else { throw RPCError.params("params.cmd: the command to run") }
        let data = try Data(contentsOf: URL(fileURLWithPath: daemon.bundleDir(c.id) + "/config.json"))
        let spec = try JSONDecoder().decode(Spec.self, from: data)
        var process = spec.process!
        process.args = cmd
        process.terminal = params["tty"] as? Bool ?? false
        process.env = BundleBuilder.mergeEnv(process.env ?? [], params["env"] as? [String] ?? [])
        if let cwd = params["workdir"] as? String { process.cwd = cwd }
        if let user = params["user"] as? String {
            let image = try daemon.storedImage(manifestDigest: c.manifestDigest, name: nil)
            process.user = try BundleBuilder(options: c.options, image: image.config, id: c.id, rootfs: daemon.rootfsDir(c.id), mounts: []).resolveUser(user)
        }
        return try JSONSerialization.jsonObject(with: JSONEncoder().encode(process)) as! [String: Any]
    }

    /// Relays the connection to the shim: `first` goes to it, then lines flow both ways
    /// untouched (stdin, resize, detach from the client; output, exit and replies from the
    /// shim) until the shim's side ends: the reply to `first`, or an exit event for attach.
    private func tunnel(_ containerID: String, _ first: [String: Any], endsOnExit: Bool) throws {
        let shimSocket: LineSocket
        do { shimSocket = try LineSocket.connect(daemon.shim(containerID).socketPath) } catch { throw RPCError("unavailable", "\(error)") }
        shimSocket.write(first)
        let firstID = first["id"].flatMap { try? JSONSerialization.data(withJSONObject: ["v": $0]) }
        let clientSocket = socket
        Thread.detachNewThread {
            while let line = clientSocket.readLine() { if !shimSocket.write(line: line) { break } }
            shimSocket.shutdownBoth()
        }
        while let line = shimSocket.readLine() {
            clientSocket.write(line: line)
            guard let message = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else { continue }
            let isFirstReply = message["id"].flatMap { try? JSONSerialization.data(withJSONObject: ["v": $0]) } == firstID
            if isFirstReply && message["error"] != nil { break }
            if endsOnExit ? message["event"] as? String == "exit" : isFirstReply { break }
        }
        shimSocket.close()
        clientSocket.shutdownBoth()
    }

    private func string(_ params: [String: Any], _ key: String) throws -> String {
        guard let value = params[key] as? String, !value.isEmpty else { throw RPCError.params("params.\(key): a non-empty string") }
        return value
    }

    private func decode<T: Decodable>(_ type: T.Type, _ params: [String: Any]) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: JSONSerialization.data(withJSONObject: params))
        } catch let DecodingError.keyNotFound(key, _) {
            throw RPCError.params("params.\(key.stringValue) is required")
        } catch let DecodingError.typeMismatch(_, context) {
            throw RPCError.params("params.\(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type")
        } catch {
            throw RPCError.params("\(error)")
        }
    }
}
