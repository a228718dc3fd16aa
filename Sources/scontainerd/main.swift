import Daemon
import Foundation

// scontainerd [--root DIR] [--state DIR] [--socket PATH] [--shim PATH] [--runtime PATH]
do {
    let config = try DaemonConfig(arguments: Array(CommandLine.arguments.dropFirst()))
    guard getuid() == 0 else { throw RPCError.precondition("scontainerd runs as root") }
    let daemon = try Daemon(config: config)
    daemon.recover()
    let server = RPCServer(daemon: daemon)
    try server.listen()
    FileHandle.standardError.write(Data("scontainerd \(config.socketPath): serving\n".utf8))
    server.serve()
} catch {
    FileHandle.standardError.write(Data("scontainerd: \(error)\n".utf8))
    exit(1)
}
