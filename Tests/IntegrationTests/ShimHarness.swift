import CLinux
import Foundation
import OCI
import Wire
import Testing

/// sshim as built by this package.
enum ShimBinary {
    static let path = ProcessInfo.processInfo.environment["SSHIM_BIN"] ?? RuntimeUnderTest.packageRoot + "/.build/debug/sshim"
}

/// One container under sshim: a TestBundle, the shim's state dir and log beside it, and the
/// shim's pid (found through its control socket's peer credentials).
final class ShimInstance: @unchecked Sendable {
    let bundle: TestBundle
    let stateDir: String
    let logPath: String
    var containerPid: pid_t = 0

    init(_ runtime: RuntimeUnderTest, _ tweak: (inout Spec) -> Void = { _ in }) throws {
        bundle = try TestBundle(runtime) { spec in
            spec.process!.terminal = false
            if runtime.name == "crun" { spec.ociVersion = "1.0.2" }
            tweak(&spec)
        }
        stateDir = bundle.dir + "-shim"
        logPath = bundle.dir + "-shim.log"
    }

    var runtime: RuntimeUnderTest { bundle.runtime }

    /// The shim's command line for this container.
    func arguments(_ extra: [String] = []) -> [String] {
        ["--id", bundle.id, "--bundle", bundle.dir, "--state-dir", stateDir, "--log", logPath,
         "--runtime", runtime.binary, "--runtime-root", bundle.stateRoot] + extra
    }

    /// Starts the shim and returns what its starter saw: the pid on stdout, or the error.
    @discardableResult
    func start(_ extra: [String] = []) throws -> Outcome {
        let r = try executeClient(ShimBinary.path, arguments(extra), seconds: 30)
        if r.code == 0 { containerPid = pid_t(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 }
        return r
    }

    func connect() throws -> ShimClient { try ShimClient(path: stateDir + "/control.sock") }

    /// The log file's records, in order.
    func records() throws -> [[String: Any]] {
        let text = try String(contentsOfFile: logPath, encoding: .utf8)
        return try text.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    /// Asks the shim to force-delete and exit; then removes whatever is left. The shim must
    /// have gone, with its state directory.
    func cleanup() {
        if let client = try? connect() {
            _ = try? client.call("shutdown", ["force": true])
        }
        let gone = (try? eventually("the shim removes its state directory") { !FileManager.default.fileExists(atPath: stateDir) }) != nil
        #expect(gone, "the shim removed its state directory")
        if containerPid > 0 { #expect(kill(containerPid, 0) != 0 || processIsZombie(containerPid), "container process gone") }
        HostCleanup.killAll(mentioning: stateDir)
        try? FileManager.default.removeItem(atPath: stateDir)
        for suffix in ["", ".1", ".2", ".3"] { try? FileManager.default.removeItem(atPath: logPath + suffix) }
        bundle.cleanup()
    }
}


func processIsZombie(_ pid: pid_t) -> Bool {
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    return stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true
}

/// A client of a shim's control socket: JSON lines out, JSON lines in, every read bounded
/// by a deadline so a silent shim fails the test instead of hanging it.
final class ShimClient {
    let fd: Int32
    private var reader = TimedLineReader()
    private var nextID = 1

    init(path: String) throws {
        do { fd = try UnixSocket.connect(path: path) } catch { throw ClientError(error.description) }
    }

    deinit { close(fd) }

    func sendLine(_ text: String) {
        let bytes = Array((text + "\n").utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Sends a request; returns its id.
    @discardableResult
    func request(_ method: String, _ params: [String: Any] = [:]) throws -> Int {
        let id = nextID
        nextID += 1
        let data = try JSONSerialization.data(withJSONObject: ["id": id, "method": method, "params": params])
        sendLine(String(decoding: data, as: UTF8.self))
        return id
    }

    /// The next line as JSON, waiting at most `seconds`.
    func readMessage(seconds: Double = 20) throws -> [String: Any] {
        guard let line = try reader.line(fd, seconds: seconds) else { throw ClientError("the shim closed the connection") }
        return try JSONSerialization.jsonObject(with: Data(line)) as! [String: Any]
    }

    /// Reads until the reply to `id`, collecting the events before it.
    func reply(to id: Int, seconds: Double = 20) throws -> (reply: [String: Any], events: [[String: Any]]) {
        var events: [[String: Any]] = []
        while true {
            let message = try readMessage(seconds: seconds)
            if (message["id"] as? Int) == id { return (message, events) }
            events.append(message)
        }
    }

    /// A request and its result; a shim error becomes a thrown error.
    @discardableResult
    func call(_ method: String, _ params: [String: Any] = [:], seconds: Double = 20) throws -> [String: Any] {
        let (reply, _) = try reply(to: try request(method, params), seconds: seconds)
        if let error = reply["error"] as? [String: Any] { throw ClientError("\(method): \(error)") }
        return reply["result"] as? [String: Any] ?? [:]
    }
}

/// The bytes of the output events among `events`, for one stream or all.
func outputBytes(_ events: [[String: Any]], stream: String? = nil) -> [UInt8] {
    events.filter { $0["event"] as? String == "output" && (stream == nil || $0["stream"] as? String == stream) }
        .flatMap { Array(Data(base64Encoded: $0["data"] as! String)!) }
}

/// Lines from a socket with a deadline on each read: test clients never hang on a daemon
/// or shim that stopped answering.
struct TimedLineReader {
    private var buffer: [UInt8] = []

    /// The next line without its newline; nil when the peer closed the connection.
    mutating func line(_ fd: Int32, seconds: Double) throws -> [UInt8]? {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let nl = buffer.firstIndex(of: 0x0a) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return line
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw ClientError("no line within \(seconds) s") }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(left * 1000)) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}
