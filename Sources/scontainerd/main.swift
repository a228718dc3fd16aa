import Daemon
import Foundation
import ImageStore

// scontainerd [--root DIR] [--state DIR] [--socket PATH] [--shim PATH] [--runtime PATH] [--snapshotter overlay|copy]
// scontainerd unpack-layer LAYER.tar[.gz] DIR   (the layer unpacker alone: benchmarks, debugging)
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "unpack-layer" {
    guard arguments.count == 3 else { FileHandle.standardError.write(Data("usage: scontainerd unpack-layer LAYER DIR\n".utf8)); exit(2) }
    do {
        var source: ByteSource = try FileSource(path: arguments[1])
        if FileSource.peek(arguments[1], count: 2) == [0x1f, 0x8b] { source = try GzipSource(source) }
        let unpacker = try LayerUnpacker(root: arguments[2])
        defer { unpacker.close() }
        try unpacker.unpack(TarReader(source))
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("scontainerd: \(error)\n".utf8))
        exit(1)
    }
}
do {
    let config = try DaemonConfig(arguments: arguments)
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
