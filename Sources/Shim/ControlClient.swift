@preconcurrency import Glibc
import Wire

/// `sshim ctl STATE_DIR METHOD [PARAMS]`: one request to a running shim from a shell; prints
/// every line until the reply, exits 0 on a result and 1 on an error.
enum ControlClient {
    static func main(_ args: [String]) -> Never {
        guard args.count == 2 || args.count == 3 else {
            fputs("usage: sshim ctl STATE_DIR METHOD [PARAMS_JSON]\n", stderr)
            exit(2)
        }
        var params = JSONValue.object([])
        if args.count == 3 {
            do { params = try JSONValue.parse(args[2]) } catch {
                fputs("sshim ctl: params: \(error)\n", stderr)
                exit(2)
            }
        }
        let path = args[0] + "/control.sock"
        let fd: Int32
        do { fd = try UnixSocket.connect(path: path) } catch { fputs("sshim ctl: \(error)\n", stderr); exit(1) }
        let request = JSONValue.object([("id", .number(1)), ("method", .string(args[1])), ("params", params)]).serialized + "\n"
        _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var pending: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buf, buf.count)
            if n <= 0 { fputs("sshim ctl: the shim closed the connection\n", stderr); exit(1) }
            pending.append(contentsOf: buf[0..<n])
            while let nl = pending.firstIndex(of: 0x0a) {
                let line = Array(pending[...nl])
                pending.removeSubrange(...nl)
                _ = line.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
                if let message = try? JSONValue.parse(line.dropLast()), message["id"]?.int == 1 {
                    exit(message["error"] == nil ? 0 : 1)
                }
            }
        }
    }
}
