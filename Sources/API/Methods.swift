/// A method of the RPC with its params and result types: the daemon, sctr, the tests and any
/// orchestrator share these, so a field cannot mean one thing to one side and another to the other.
public protocol Call: Sendable {
    associatedtype Params: Codable & Sendable
    associatedtype Result: Codable & Sendable
    static var method: Method { get }
}

/// Every method the daemon serves. docs/scontainerd-rpc.md documents each; a test checks the
/// two against each other (names and params fields).
public enum Method: String, CaseIterable, Sendable {
    case systemVersion = "system.version", systemInfo = "system.info", namespaceList = "namespace.list"
    case imageImport = "image.import", imagePull = "image.pull", imagePush = "image.push", imageSave = "image.save", registryLogin = "registry.login", registryLogout = "registry.logout", imageList = "image.list", imageInspect = "image.inspect", imageTag = "image.tag", imageRemove = "image.remove"
    case containerCreate = "container.create", containerRun = "container.run", containerStart = "container.start"
    case containerStop = "container.stop", containerKill = "container.kill", containerPause = "container.pause"
    case containerUnpause = "container.unpause", containerWait = "container.wait", containerInspect = "container.inspect"
    case containerList = "container.list", containerRemove = "container.remove", containerLogs = "container.logs"
    case containerAttach = "container.attach", containerExec = "container.exec"
    case containerRename = "container.rename", containerUpdate = "container.update", containerStats = "container.stats", containerTop = "container.top"
    case containerCopy = "container.copy", containerDiff = "container.diff", containerExport = "container.export", containerCommit = "container.commit"
    case streamStdin = "stream.stdin", streamCloseStdin = "stream.closeStdin", streamResize = "stream.resize", streamDetach = "stream.detach"
    case volumeCreate = "volume.create", volumeList = "volume.list", volumeInspect = "volume.inspect", volumeRemove = "volume.remove"
    case eventsSubscribe = "events.subscribe"
    case systemPrune = "system.prune", systemDiskUsage = "system.df", imagePrune = "image.prune", volumePrune = "volume.prune"
    case networkCreate = "network.create", networkList = "network.list", networkInspect = "network.inspect", networkRemove = "network.remove"
    case networkConnect = "network.connect", networkDisconnect = "network.disconnect", networkPrune = "network.prune"

    /// The typed description of this method.
    public var call: any Call.Type {
        switch self {
        case .systemVersion: return Calls.SystemVersion.self
        case .systemInfo: return Calls.SystemInfo.self
        case .namespaceList: return Calls.NamespaceList.self
        case .imageImport: return Calls.ImageImport.self
        case .imagePull: return Calls.ImagePull.self
        case .imagePush: return Calls.ImagePush.self
        case .imageSave: return Calls.ImageSave.self
        case .registryLogin: return Calls.RegistryLogin.self
        case .registryLogout: return Calls.RegistryLogout.self
        case .imageList: return Calls.ImageList.self
        case .imageInspect: return Calls.ImageInspect.self
        case .imageTag: return Calls.ImageTag.self
        case .imageRemove: return Calls.ImageRemove.self
        case .containerCreate: return Calls.ContainerCreate.self
        case .containerRun: return Calls.ContainerRun.self
        case .containerStart: return Calls.ContainerStart.self
        case .containerStop: return Calls.ContainerStop.self
        case .containerKill: return Calls.ContainerKill.self
        case .containerPause: return Calls.ContainerPause.self
        case .containerUnpause: return Calls.ContainerUnpause.self
        case .containerWait: return Calls.ContainerWait.self
        case .containerInspect: return Calls.ContainerInspect.self
        case .containerList: return Calls.ContainerList.self
        case .containerRemove: return Calls.ContainerRemove.self
        case .containerLogs: return Calls.ContainerLogs.self
        case .containerAttach: return Calls.ContainerAttach.self
        case .containerExec: return Calls.ContainerExec.self
        case .containerRename: return Calls.ContainerRename.self
        case .containerUpdate: return Calls.ContainerUpdate.self
        case .containerStats: return Calls.ContainerStats.self
        case .containerTop: return Calls.ContainerTop.self
        case .containerCopy: return Calls.ContainerCopy.self
        case .containerDiff: return Calls.ContainerDiff.self
        case .containerExport: return Calls.ContainerExport.self
        case .containerCommit: return Calls.ContainerCommit.self
        case .streamStdin: return Calls.StreamStdin.self
        case .streamCloseStdin: return Calls.StreamCloseStdin.self
        case .streamResize: return Calls.StreamResize.self
        case .streamDetach: return Calls.StreamDetach.self
        case .volumeCreate: return Calls.VolumeCreate.self
        case .volumeList: return Calls.VolumeList.self
        case .volumeInspect: return Calls.VolumeInspect.self
        case .volumeRemove: return Calls.VolumeRemove.self
        case .eventsSubscribe: return Calls.EventsSubscribe.self
        case .systemPrune: return Calls.SystemPrune.self
        case .systemDiskUsage: return Calls.SystemDiskUsage.self
        case .imagePrune: return Calls.ImagePrune.self
        case .volumePrune: return Calls.VolumePrune.self
        case .networkCreate: return Calls.NetworkCreate.self
        case .networkList: return Calls.NetworkList.self
        case .networkInspect: return Calls.NetworkInspect.self
        case .networkRemove: return Calls.NetworkRemove.self
        case .networkConnect: return Calls.NetworkConnect.self
        case .networkDisconnect: return Calls.NetworkDisconnect.self
        case .networkPrune: return Calls.NetworkPrune.self
        }
    }
}

/// One type per method: `Calls.ContainerCreate.Params` is what `container.create` takes.
public enum Calls {
    public enum SystemVersion: Call { public typealias Params = Empty; public typealias Result = VersionInfo; public static let method = Method.systemVersion }
    public enum SystemInfo: Call { public typealias Params = Empty; public typealias Result = API.SystemInfo; public static let method = Method.systemInfo }
    public enum NamespaceList: Call { public typealias Params = Empty; public typealias Result = API.NamespaceList; public static let method = Method.namespaceList }
    public enum ImageImport: Call { public typealias Params = ImportParams; public typealias Result = API.ImageList; public static let method = Method.imageImport }
    public enum ImagePull: Call { public typealias Params = PullParams; public typealias Result = API.ImageList; public static let method = Method.imagePull }
    public enum ImagePush: Call { public typealias Params = PushParams; public typealias Result = ImageInfo; public static let method = Method.imagePush }
    public enum ImageSave: Call { public typealias Params = SaveParams; public typealias Result = Empty; public static let method = Method.imageSave }
    public enum RegistryLogin: Call { public typealias Params = LoginParams; public typealias Result = Empty; public static let method = Method.registryLogin }
    public enum RegistryLogout: Call { public typealias Params = LogoutParams; public typealias Result = Empty; public static let method = Method.registryLogout }
    public enum ImageList: Call { public typealias Params = ListParams; public typealias Result = API.ImageList; public static let method = Method.imageList }
    public enum ImageInspect: Call { public typealias Params = NameParams; public typealias Result = ImageDetail; public static let method = Method.imageInspect }
    public enum ImageTag: Call { public typealias Params = TagParams; public typealias Result = NameResult; public static let method = Method.imageTag }
    public enum ImageRemove: Call { public typealias Params = NameParams; public typealias Result = Empty; public static let method = Method.imageRemove }
    public enum ContainerCreate: Call { public typealias Params = CreateOptions; public typealias Result = ContainerRef; public static let method = Method.containerCreate }
    public enum ContainerRun: Call { public typealias Params = CreateOptions; public typealias Result = ContainerRef; public static let method = Method.containerRun }
    public enum ContainerStart: Call { public typealias Params = ContainerParams; public typealias Result = Empty; public static let method = Method.containerStart }
    public enum ContainerStop: Call { public typealias Params = StopParams; public typealias Result = ContainerInfo; public static let method = Method.containerStop }
    public enum ContainerKill: Call { public typealias Params = KillParams; public typealias Result = Empty; public static let method = Method.containerKill }
    public enum ContainerPause: Call { public typealias Params = ContainerParams; public typealias Result = Empty; public static let method = Method.containerPause }
    public enum ContainerUnpause: Call { public typealias Params = ContainerParams; public typealias Result = Empty; public static let method = Method.containerUnpause }
    public enum ContainerWait: Call { public typealias Params = ContainerParams; public typealias Result = WaitResult; public static let method = Method.containerWait }
    public enum ContainerInspect: Call { public typealias Params = ContainerParams; public typealias Result = ContainerInfo; public static let method = Method.containerInspect }
    public enum ContainerList: Call { public typealias Params = ListContainersParams; public typealias Result = API.ContainerList; public static let method = Method.containerList }
    public enum ContainerRemove: Call { public typealias Params = RemoveParams; public typealias Result = Empty; public static let method = Method.containerRemove }
    public enum ContainerLogs: Call { public typealias Params = LogsParams; public typealias Result = LogsEnd; public static let method = Method.containerLogs }
    public enum ContainerAttach: Call { public typealias Params = ContainerParams; public typealias Result = AttachStarted; public static let method = Method.containerAttach }
    public enum ContainerExec: Call { public typealias Params = ExecParams; public typealias Result = ExecStarted; public static let method = Method.containerExec }
    public enum ContainerRename: Call { public typealias Params = RenameParams; public typealias Result = Empty; public static let method = Method.containerRename }
    public enum ContainerUpdate: Call { public typealias Params = UpdateParams; public typealias Result = ContainerInfo; public static let method = Method.containerUpdate }
    public enum ContainerStats: Call { public typealias Params = ContainerParams; public typealias Result = API.ContainerStats; public static let method = Method.containerStats }
    public enum ContainerTop: Call { public typealias Params = ContainerParams; public typealias Result = TopResult; public static let method = Method.containerTop }
    public enum ContainerCopy: Call { public typealias Params = CopyParams; public typealias Result = Empty; public static let method = Method.containerCopy }
    public enum ContainerDiff: Call { public typealias Params = ContainerParams; public typealias Result = ContainerChanges; public static let method = Method.containerDiff }
    public enum ContainerExport: Call { public typealias Params = ExportParams; public typealias Result = Empty; public static let method = Method.containerExport }
    public enum ContainerCommit: Call { public typealias Params = CommitParams; public typealias Result = ImageInfo; public static let method = Method.containerCommit }
    public enum StreamStdin: Call { public typealias Params = StdinParams; public typealias Result = StdinResult; public static let method = Method.streamStdin }
    public enum StreamCloseStdin: Call { public typealias Params = Empty; public typealias Result = Empty; public static let method = Method.streamCloseStdin }
    public enum StreamResize: Call { public typealias Params = ResizeParams; public typealias Result = Empty; public static let method = Method.streamResize }
    public enum StreamDetach: Call { public typealias Params = Empty; public typealias Result = Empty; public static let method = Method.streamDetach }
    public enum VolumeCreate: Call { public typealias Params = VolumeCreateParams; public typealias Result = VolumeInfo; public static let method = Method.volumeCreate }
    public enum VolumeList: Call { public typealias Params = ListParams; public typealias Result = API.VolumeList; public static let method = Method.volumeList }
    public enum VolumeInspect: Call { public typealias Params = NameParams; public typealias Result = VolumeInfo; public static let method = Method.volumeInspect }
    public enum VolumeRemove: Call { public typealias Params = NameParams; public typealias Result = Empty; public static let method = Method.volumeRemove }
    public enum SystemDiskUsage: Call { public typealias Params = Empty; public typealias Result = DiskUsage; public static let method = Method.systemDiskUsage }
    public enum ImagePrune: Call { public typealias Params = ImagePruneParams; public typealias Result = PruneResult; public static let method = Method.imagePrune }
    public enum VolumePrune: Call { public typealias Params = Empty; public typealias Result = PruneResult; public static let method = Method.volumePrune }
    public enum SystemPrune: Call { public typealias Params = PruneParams; public typealias Result = PruneResult; public static let method = Method.systemPrune }
    public enum NetworkCreate: Call { public typealias Params = NetworkCreateParams; public typealias Result = NetworkInfo; public static let method = Method.networkCreate }
    public enum NetworkList: Call { public typealias Params = NetworkListParams; public typealias Result = API.NetworkList; public static let method = Method.networkList }
    public enum NetworkInspect: Call { public typealias Params = NameParams; public typealias Result = NetworkInfo; public static let method = Method.networkInspect }
    public enum NetworkRemove: Call { public typealias Params = NameParams; public typealias Result = Empty; public static let method = Method.networkRemove }
    public enum NetworkConnect: Call { public typealias Params = NetworkConnectParams; public typealias Result = Empty; public static let method = Method.networkConnect }
    public enum NetworkDisconnect: Call { public typealias Params = NetworkDisconnectParams; public typealias Result = Empty; public static let method = Method.networkDisconnect }
    public enum NetworkPrune: Call { public typealias Params = Empty; public typealias Result = PruneResult; public static let method = Method.networkPrune }
    public enum EventsSubscribe: Call { public typealias Params = SubscribeParams; public typealias Result = Subscribed; public static let method = Method.eventsSubscribe }
}
