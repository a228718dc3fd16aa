import API
import CLinux
import Foundation
import Testing
import Wire

/// The daemon as an orchestrator drives it: its own client on the API's types, two
/// namespaces, an event subscription cut off by a daemon crash and resumed from its last
/// sequence number, and a log follow resumed from its cursor.
@Suite("scontainerd orchestrator")
struct OrchestratorTests {
    @Test func namespacesResumableEventsAndLogsAcrossADaemonCrash() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        for ns in ["team-a", "k8s.io"] {
            #expect(try d.sctr(["--namespace", ns, "import", TestImages.dir + "/layered-oci.tar"]).code == 0)
        }
        let trigger = d.dir + "/trigger"
        try FileManager.default.createDirectory(atPath: trigger, withIntermediateDirectories: true)
        func options(_ name: String, _ script: String, labels: [String: String]? = nil) -> CreateOptions {
            var o = CreateOptions(image: "test/layered:oci")
            o.name = name
            o.cmd = ["sh", "-c", script]
            o.cgroupParent = "/" + d.name
            o.volumes = [trigger + ":/trigger:ro"]
            o.labels = labels
            return o
        }
        let a = try RPCClient(path: d.socketPath, namespace: "team-a")
        let b = try RPCClient(path: d.socketPath, namespace: "k8s.io")
        var events = try RPCClient(path: d.socketPath, namespace: "team-a")
        _ = try events.final(events.send(Calls.EventsSubscribe.self, SubscribeParams(since: .sequence(0))))

        // The same name in two namespaces; each sees only its own.
        let webA = try a.call(Calls.ContainerRun.self, options("web", "sleep 1000", labels: ["app": "web"]))
        let webB = try b.call(Calls.ContainerRun.self, options("web", "sleep 1000"))
        #expect(webA.id != webB.id)
        #expect(try a.call(Calls.ContainerList.self, ListContainersParams()).containers.map { "\($0.namespace)/\($0.name)" } == ["team-a/web"])
        #expect(try b.call(Calls.ContainerList.self, ListContainersParams()).containers.map { "\($0.namespace)/\($0.name)" } == ["k8s.io/web"])
        #expect(try b.errorOf(Calls.ContainerInspect.self, ContainerParams(id: webA.id))?.code == .notFound)
        #expect(try a.call(Calls.ContainerList.self, ListContainersParams(filters: ["label": ["app=web"]])).containers.count == 1)
        #expect(try a.call(Calls.ContainerList.self, ListContainersParams(filters: ["label": ["app=db"]])).containers.isEmpty)
        #expect(Set(try a.call(Calls.NamespaceList.self, Empty()).namespaces).isSuperset(of: ["team-a", "k8s.io"]))

        // Two containers that end while the daemon is down (one exits 3, one is SIGKILLed), and
        // one that counts to 300 the whole time.
        let waitForGo = "while [ ! -e /trigger/go ]; do sleep 0.05; done; "
        let quits = try a.call(Calls.ContainerRun.self, options("quits", waitForGo + "exit 3"))
        let killed = try a.call(Calls.ContainerRun.self, options("killed", "sleep 1000"))
        let counter = try a.call(Calls.ContainerRun.self, options("counter", "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); sleep 0.01; done"))
        var lastSeq: Int64 = 0
        var seen: [String] = []
        while seen.filter({ $0.hasSuffix("/start") }).count < 4, let line = try events.next() {
            guard let e = line.notice(API.Event.self) else { continue }
            #expect(e.namespace == "team-a" && e.seq > lastSeq)
            lastSeq = e.seq
            seen.append("\(e.attributes["name"] ?? e.id)/\(e.action.rawValue)")
        }

        // A log follow that is cut off after 20 records.
        var lines: [String] = []
        var cursor: String?
        do {
            let follower = try RPCClient(path: d.socketPath, namespace: "team-a")
            var params = LogsParams(id: "counter")
            params.follow = true
            let id = follower.send(Calls.ContainerLogs.self, params)
            while lines.count < 20, let line = try follower.next() {
                guard line.id == .number(Double(id)), let record = line.notice(LogRecord.self) else { continue }
                lines.append(record.log ?? "")
                cursor = record.cursor
            }
        }

        // The daemon dies; meanwhile two containers end (and the old connections are gone).
        let pids = try [quits.id, killed.id].map { try a.call(Calls.ContainerInspect.self, ContainerParams(id: $0)).pid }
        d.crash()
        #expect(try events.next(seconds: 10) == nil, "the subscription was cut off")
        _ = FileManager.default.createFile(atPath: trigger + "/go", contents: Data())
        kill(pid_t(pids[1]), SIGKILL)
        try eventually("both containers exited") { pids.allSatisfy { kill(pid_t($0), 0) != 0 } }
        try d.start()

        // Resume from the last sequence number seen: every die, with its code and signal.
        events = try RPCClient(path: d.socketPath, namespace: "team-a")
        _ = try events.final(events.send(Calls.EventsSubscribe.self, SubscribeParams(since: .sequence(lastSeq))))
        var dies: [String: API.ExitStatus] = [:]
        var seqs: [Int64] = []
        while dies.count < 2, let line = try events.next() {
            guard let e = line.notice(API.Event.self) else { continue }
            #expect(e.namespace == "team-a")
            seqs.append(e.seq)
            if e.action == .die { dies[e.attributes["name"] ?? ""] = e.exit }
        }
        #expect(seqs.first.map { $0 > lastSeq } == true && seqs == seqs.sorted() && Set(seqs).count == seqs.count, "\(seqs) after \(lastSeq)")
        #expect(dies["quits"]?.code == 3 && dies["quits"]?.signal == nil, "\(dies)")
        #expect(dies["killed"]?.code == 137 && dies["killed"]?.signal == 9, "\(dies)")
        let a2 = try RPCClient(path: d.socketPath, namespace: "team-a")
        let quitsInfo = try a2.call(Calls.ContainerInspect.self, ContainerParams(id: quits.id))
        #expect(quitsInfo.status == .exited && quitsInfo.exitCode == 3 && quitsInfo.finishedAt == dies["quits"]?.time, "\(quitsInfo)")

        // Resume the log follow from its cursor: no line missed or repeated.
        var params = LogsParams(id: counter.id)
        params.follow = true
        params.cursor = cursor
        let id = a2.send(Calls.ContainerLogs.self, params)
        let (end, notices) = try a2.final(id, seconds: 60)
        lines += notices.compactMap { $0.notice(LogRecord.self)?.log }
        #expect(try end.result(Calls.ContainerLogs.self).end == .exited)
        #expect(lines == (0..<300).map { "line \($0)\n" }, "\(lines.count) lines")
    }
}
