import API
import Foundation
import ImageStore
import OCI
import Registry
import Wire

/// One request's handling: the method table of the RPC (docs/scontainerd-rpc.md). Every
/// method decodes its typed params strictly and answers with its typed result.
struct Handlers {
    let daemon: Daemon
    let connection: Connection
    let request: Request
    var ns: String { request.namespace }

    /// Decodes the params, runs `body`, sends its result.
    private func reply<C: Call>(_ call: C.Type, _ body: (C.Params) throws -> C.Result) throws {
        let params = try request.decode(call)
        connection.send(Line.result(request.id, try body(params)))
    }

    func dispatch() throws {
        switch request.method {
        case .systemVersion:
            try reply(Calls.SystemVersion.self) { _ in VersionInfo(version: Daemon.version, protocol: protocolVersion) }
        case .systemInfo:
            try reply(Calls.SystemInfo.self) { _ in
                let containers = try daemon.metadata.containers(ns)
                return SystemInfo(root: daemon.config.root, state: daemon.config.state, runtime: daemon.config.runtime, shim: daemon.config.shim,
                                  namespace: ns, containers: containers.count, running: containers.filter { $0.status == .running }.count,
                                  images: try daemon.metadata.images(ns).count, volumes: try daemon.metadata.volumes(ns).count)
            }
        case .namespaceList:
            try reply(Calls.NamespaceList.self) { _ in NamespaceList(namespaces: try daemon.metadata.namespaces()) }
        case .imageImport:
            try reply(Calls.ImageImport.self) { p in
                ImageList(images: try daemon.importImages(ns, p) { connection.send(Line.notice(request.id, $0)) })
            }
        case .imagePull:
            try reply(Calls.ImagePull.self) { p in
                ImageList(images: [try daemon.pullImage(ns, p) { connection.send(Line.notice(request.id, $0)) }])
            }
        case .imagePush:
            try reply(Calls.ImagePush.self) { p in try daemon.pushImage(ns, p) { connection.send(Line.notice(request.id, $0)) } }
        case .imageSave:
            try reply(Calls.ImageSave.self) { p in try daemon.save(ns, p); return Empty() }
        case .registryLogin:
            try reply(Calls.RegistryLogin.self) { p in try daemon.login(p.registry, Credentials(username: p.username, password: p.password)); return Empty() }
        case .registryLogout:
            try reply(Calls.RegistryLogout.self) { p in try daemon.login(p.registry, nil); return Empty() }
        case .imageList:
            try reply(Calls.ImageList.self) { p in
                let filter = try FilterSet(p.filters, allowed: ListParams.imageFilterKeys)
                return ImageList(images: try daemon.metadata.images(ns).compactMap { row in
                    guard let image = try? daemon.storedImage(manifestDigest: row.manifestDigest, name: row.name) else {
                        daemon.log.error("image \(row.name): its manifest or config is unreadable")
                        return nil
                    }
                    let info = daemon.imageInfo(image, row)
                    return filter.matches(info) ? info : nil
                })
            }
        case .imageInspect:
            try reply(Calls.ImageInspect.self) { p in
                let (image, row) = try daemon.findImage(ns, p.name)
                return ImageDetail(image: daemon.imageInfo(image, row), manifest: image.manifest, config: image.config)
            }
        case .imageTag:
            try reply(Calls.ImageTag.self) { p in NameResult(name: try daemon.tagImage(ns, p)) }
        case .imageRemove:
            try reply(Calls.ImageRemove.self) { p in try daemon.removeImage(ns, p.name); return Empty() }
        case .containerCreate, .containerRun:
            try reply(Calls.ContainerCreate.self) { options in
                let c = try daemon.createContainer(ns, options)
                if request.method == .containerRun {
                    do { try daemon.startContainer(c) } catch {
                        daemon.logged("remove \(c.id) after its start failed") { try daemon.removeContainer(c, force: true) }
                        throw error
                    }
                }
                return ContainerRef(id: c.id, name: c.name)
            }
        case .containerStart:
            try reply(Calls.ContainerStart.self) { p in try daemon.startContainer(try daemon.row(ns, p.id)); return Empty() }
        case .containerStop:
            try reply(Calls.ContainerStop.self) { p in
                let timeout = p.timeout ?? 10
                guard timeout >= 0 && timeout <= 86400 else { throw APIError.params("params.timeout: seconds from 0 to 86400") }
                let c = try daemon.row(ns, p.id)
                try daemon.stopContainer(c, timeout: timeout)
                return daemon.info(try daemon.row(ns, c.id))
            }
        case .containerKill:
            try reply(Calls.ContainerKill.self) { p in
                let c = try daemon.row(ns, p.id)
                guard c.status.isLive || c.status == .created else { throw APIError.precondition("container \(c.name) is \(c.status.rawValue)") }
                var params: [(String, JSONValue)] = [("signal", .number(Double((p.signal ?? .kill).number)))]
                if p.all == true { params.append(("all", .bool(true))) }
                try daemon.shim(c.id).call("kill", .object(params))
                return Empty()
            }
        case .containerPause, .containerUnpause:
            try reply(Calls.ContainerPause.self) { p in
                let pause = request.method == .containerPause
                let c = try daemon.row(ns, p.id)
                guard c.status == (pause ? .running : .paused) else { throw APIError.precondition("container \(c.name) is \(c.status.rawValue)") }
                try daemon.shim(c.id).call(pause ? "pause" : "resume")
                try daemon.metadata.setStatus(c.id, pause ? .paused : .running,
                                              event: EventDraft(namespace: ns, type: .container, action: pause ? .pause : .unpause, id: c.id, attributes: ["name": c.name]))
                return Empty()
            }
        case .containerWait:
            try reply(Calls.ContainerWait.self) { p in
                let c = try daemon.row(ns, p.id)
                if c.status.isLive || c.status == .created {
                    do { try daemon.shim(c.id).call("wait") } catch { daemon.log.debug("wait for \(c.id) through its shim: \(error)") }
                    _ = daemon.waitForExit(c.id, seconds: 10)
                }
                // The exit that ended the run, also when the restart policy runs it again.
                if let after = try daemon.metadata.container(id: c.id), after.status == .exited || after.status == .restarting {
                    return WaitResult(exitCode: after.exitCode ?? -1, signal: after.exitSignal, oomKilled: after.oomKilled)
                }
                // Not recorded yet (a full store): the shim's own record.
                let exit = daemon.shim(c.id).exitRecord()
                return WaitResult(exitCode: exit?.code ?? -1, signal: exit?.signal, oomKilled: exit?.oomKilled ?? false)
            }
        case .containerInspect:
            try reply(Calls.ContainerInspect.self) { p in daemon.info(try daemon.row(ns, p.id)) }
        case .containerList:
            try reply(Calls.ContainerList.self) { p in
                let filter = try FilterSet(p.filters, allowed: ListContainersParams.filterKeys)
                let rows = try daemon.metadata.containers(ns).filter { p.all == true || $0.status.isListed }
                return ContainerList(containers: rows.map { daemon.info($0, live: false) }.filter(filter.matches))
            }
        case .containerRemove:
            try reply(Calls.ContainerRemove.self) { p in try daemon.removeContainer(try daemon.row(ns, p.id), force: p.force == true); return Empty() }
        case .containerLogs:
            try reply(Calls.ContainerLogs.self) { p in try LogStream(daemon: daemon, params: p, container: try daemon.row(ns, p.id)).send(to: connection, id: request.id) }
        case .containerAttach:
            let p = try request.decode(Calls.ContainerAttach.self)
            let c = try daemon.row(ns, p.id)
            try connection.begin { try ShimSession(kind: .attach, shim: daemon.shim(c.id), client: connection, requestID: request.id, params: .object([])) }
        case .containerExec:
            let p = try request.decode(Calls.ContainerExec.self)
            let c = try daemon.row(ns, p.id)
            guard c.status == .running else { throw APIError.precondition("container \(c.name) is \(c.status.rawValue)") }
            let process = try execProcess(c, p)
            let params = JSONValue.object([("process", process), ("tty", .bool(p.tty == true)), ("stdin", .bool(p.stdin == true))])
            try connection.begin { try ShimSession(kind: .exec, shim: daemon.shim(c.id), client: connection, requestID: request.id, params: params) }
        case .containerRename:
            try reply(Calls.ContainerRename.self) { p in
                try Validate.name(p.name, field: "params.name")
                let c = try daemon.row(ns, p.id)
                try daemon.metadata.renameContainer(c, to: p.name, event: EventDraft(namespace: ns, type: .container, action: .rename, id: c.id,
                                                                                    attributes: ["name": p.name, "oldName": c.name]))
                return Empty()
            }
        case .containerUpdate:
            try reply(Calls.ContainerUpdate.self) { p in daemon.info(try daemon.updateContainer(try daemon.row(ns, p.id), p)) }
        case .containerStats:
            try reply(Calls.ContainerStats.self) { p in try daemon.stats(try daemon.row(ns, p.id)) }
        case .systemPrune:
            try reply(Calls.SystemPrune.self) { p in try daemon.prune(ns, p) }
        case .systemDiskUsage:
            try reply(Calls.SystemDiskUsage.self) { _ in try daemon.diskUsage(ns) }
        case .imagePrune:
            try reply(Calls.ImagePrune.self) { p in
                var r = PruneResult()
                r.imagesDeleted = try daemon.pruneImages(ns, all: p.all == true)
                r.spaceReclaimed = try daemon.collectGarbage()
                return r
            }
        case .volumePrune:
            try reply(Calls.VolumePrune.self) { _ in var r = PruneResult(); r.volumesDeleted = try daemon.pruneVolumes(ns); return r }
        case .containerDiff:
            try reply(Calls.ContainerDiff.self) { p in try daemon.diff(try daemon.row(ns, p.id)) }
        case .containerExport:
            try reply(Calls.ContainerExport.self) { p in try daemon.export(try daemon.row(ns, p.id), to: p.hostPath); return Empty() }
        case .containerCommit:
            try reply(Calls.ContainerCommit.self) { p in try daemon.commit(try daemon.row(ns, p.id), p) }
        case .containerCopy:
            try reply(Calls.ContainerCopy.self) { p in try daemon.copy(try daemon.row(ns, p.id), p); return Empty() }
        case .containerTop:
            try reply(Calls.ContainerTop.self) { p in try daemon.top(try daemon.row(ns, p.id)) }
        case .streamStdin: try forward(Calls.StreamStdin.self)
        case .streamCloseStdin: try forward(Calls.StreamCloseStdin.self)
        case .streamResize: try forward(Calls.StreamResize.self)
        case .streamDetach: try forward(Calls.StreamDetach.self)
        case .volumeCreate:
            try reply(Calls.VolumeCreate.self) { p in try daemon.ensureVolume(ns, p.name, labels: p.labels ?? [:]) }
        case .volumeList:
            try reply(Calls.VolumeList.self) { p in
                let filter = try FilterSet(p.filters, allowed: ListParams.volumeFilterKeys)
                return VolumeList(volumes: try daemon.metadata.volumes(ns).map(daemon.volumeInfo).filter(filter.matches))
            }
        case .volumeInspect:
            try reply(Calls.VolumeInspect.self) { p in try daemon.volume(ns, p.name) }
        case .volumeRemove:
            try reply(Calls.VolumeRemove.self) { p in try daemon.removeVolume(ns, p.name); return Empty() }
        case .networkCreate:
            try reply(Calls.NetworkCreate.self) { p in try daemon.createNetwork(ns, p) }
        case .networkList:
            try reply(Calls.NetworkList.self) { p in
                let filter = try FilterSet(p.filters, allowed: NetworkListParams.filterKeys)
                return NetworkList(networks: try daemon.metadata.networks().map(daemon.networkInfo).filter(filter.matches))
            }
        case .networkInspect:
            try reply(Calls.NetworkInspect.self) { p in daemon.networkInfo(try daemon.findNetwork(p.name)) }
        case .networkRemove:
            try reply(Calls.NetworkRemove.self) { p in try daemon.removeNetwork(ns, p.name); return Empty() }
        case .networkConnect:
            try reply(Calls.NetworkConnect.self) { p in try daemon.connectNetwork(ns, p); return Empty() }
        case .networkDisconnect:
            try reply(Calls.NetworkDisconnect.self) { p in try daemon.disconnectNetwork(ns, p); return Empty() }
        case .networkPrune:
            try reply(Calls.NetworkPrune.self) { _ in var r = PruneResult(); r.networksDeleted = try daemon.pruneNetworks(ns); return r }
        case .eventsSubscribe:
            let p = try request.decode(Calls.EventsSubscribe.self)
            let filter = try FilterSet(p.filters, allowed: SubscribeParams.filterKeys)
            let (cursor, subscribed) = try daemon.events.start(p.since)
            try connection.subscribe { [daemon, connection, request] in
                connection.send(Line.result(request.id, subscribed))
                daemon.events.stream(request.namespace, from: cursor, to: { connection.send(Line.notice(request.id, $0)) },
                                     filter: filter.matches, stopped: { connection.isClosing })
            }
        }
    }

    /// Checks a stream.* request's params, then hands it to the connection's session.
    private func forward<C: Call>(_ call: C.Type) throws {
        _ = try request.decode(call)
        try connection.forward(request)
    }

    /// The exec'd process: the container's env, cwd and user unless the request overrides them.
    private func execProcess(_ c: Metadata.ContainerRow, _ p: ExecParams) throws -> JSONValue {
        guard !p.cmd.isEmpty else { throw APIError.params("params.cmd: the command to run") }
        try Validate.command(p.cmd, field: "params.cmd")
        try Validate.env(p.env, field: "params.env")
        try Validate.containerPath(p.workdir, field: "params.workdir")
        let data = try Data(contentsOf: URL(fileURLWithPath: daemon.bundleDir(c.id) + "/config.json"))
        let spec = try JSONDecoder().decode(Spec.self, from: data)
        guard var process = spec.process else { throw APIError.internal("the bundle of \(c.name) has no process") }
        process.args = p.cmd
        process.terminal = p.tty == true
        // docker's TERM for a terminal exec, unless the container or the caller set one.
        process.env = BundleBuilder.mergeEnv((p.tty == true ? ["TERM=xterm"] : []) + (process.env ?? []), p.env ?? [])
        if p.tty == true, let size = p.consoleSize { process.consoleSize = ConsoleSize(height: UInt32(size.rows), width: UInt32(size.cols)) }
        if let cwd = p.workdir { process.cwd = cwd }
        if let user = p.user {
            let image = try daemon.storedImage(manifestDigest: c.manifestDigest, name: nil)
            process.user = try BundleBuilder(options: c.options, image: image.config, id: c.id, rootfs: daemon.rootfsDir(c.id), mounts: []).resolveUser(user)
        }
        return try JSONValue.parse(Array(JSONEncoder().encode(process)))
    }
}
