import CLinux
import Foundation
import RPC

/// sctr: the human-facing client of scontainerd, docker-like verbs over the daemon's RPC.
/// Tables by default, `--format json` for scripts; `run` exits with the container's code.
public enum Sctr {
    static let usage = """
        usage: sctr [--socket PATH] [--format table|json] COMMAND [ARGS]
          images | import PATH | tag SRC DST | rmi IMAGE
          run [-d] [-i] [-t] [--rm] [--name N] [-e K=V] [-v SRC:DST[:ro]] [-w DIR] [-u USER] [--hostname H]
              [-m BYTES[k|m|g]] [--cpus N] [--pids-limit N] [--read-only] [--cap-add C] [--cap-drop C]
              [--restart no|on-failure[:N]|always] [--entrypoint CMD] [--cgroup-parent PATH] IMAGE [CMD...]
          create (as run, without -d/--rm) | start ID | ps [-a] | logs [-f] [--tail N] ID | wait ID
          exec [-i] [-t] [-e K=V] [-u USER] [-w DIR] ID CMD... | stop [-t SECONDS] ID | kill [-s SIGNAL] ID
          pause ID | unpause ID | rm [-f] ID... | inspect ID|IMAGE
          volume create NAME | volume ls | volume inspect NAME | volume rm NAME | events | version | info
        """

    /// Global flags, then the verb; exits with the verb's code.
    public static func main(_ arguments: [String]) -> Never {
        var args = arguments[...]
        var socketPath = ProcessInfo.processInfo.environment["SCONTAINERD_SOCKET"] ?? "/run/scontainerd/scontainerd.sock"
        var json = false
        while let first = args.first, first.hasPrefix("--") {
            args.removeFirst()
            switch first {
            case "--socket": socketPath = args.popFirst() ?? socketPath
            case "--format": json = args.popFirst() == "json"
            case "--help": print(usage); exit(0)
            default: fail("unknown option \(first)", code: 2)
            }
        }
        guard let verb = args.popFirst() else { fail(usage, code: 2) }
        let client = Client(socketPath: socketPath, json: json)
        do {
            exit(try client.run(verb, Array(args)))
        } catch {
            fail("\(error)")
        }
    }

    static func fail(_ message: String, code: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("sctr: \(message)\n".utf8))
        exit(code)
    }
}

/// An error the daemon answered with.
struct DaemonError: Error, CustomStringConvertible {
    let code: String
    let description: String
}
