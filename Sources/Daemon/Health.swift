import API
import Foundation
import OCI
import Wire

/// Health checks as docker runs them: every `interval` the test runs in the container (an
/// exec through its shim); `retries` failures in a row make it `unhealthy`, one success
/// `healthy`; failures within `startPeriod` do not count. The status lives in the daemon's
/// memory for the current run (a restarted daemon starts again at `starting`).
extension Daemon {
    struct HealthPlan {
        let test: [String]
        let interval: Double, timeout: Double, startPeriod: Double
        let retries: Int
    }

    /// The container's check: its own options, else its image's; nil for none or `NONE`.
    func healthPlan(_ c: Metadata.ContainerRow) -> HealthPlan? {
        var test: [String]?, interval: Double?, timeout: Double?, start: Double?, retries: Int?
        if let h = c.options.healthcheck {
            (test, interval, timeout, start, retries) = (h.test, h.interval, h.timeout, h.startPeriod, h.retries)
        } else if let h = (try? storedImage(manifestDigest: c.manifestDigest, name: nil))?.config.config?.Healthcheck {
            let seconds = { (ns: Int64?) in ns.flatMap { $0 > 0 ? Double($0) / 1e9 : nil } }
            (test, interval, timeout, start, retries) = (h.Test, seconds(h.Interval), seconds(h.Timeout), seconds(h.StartPeriod), h.Retries)
        }
        guard let test, let kind = test.first, kind != "NONE", test.count > 1 else { return nil }
        let command = kind == "CMD-SHELL" ? ["/bin/sh", "-c", test.dropFirst().joined(separator: " ")] : Array(test.dropFirst())
        return HealthPlan(test: command, interval: interval ?? 30, timeout: timeout ?? 30, startPeriod: start ?? 0, retries: max(1, retries ?? 3))
    }

    /// Runs the checks of the container's current run (the shim `pid`) on their own thread.
    func watchHealth(_ id: String, pid: Int?) {
        guard let c = try? metadata.container(id: id), let plan = healthPlan(c) else { return }
        setHealth(id, HealthInfo(status: "starting", failingStreak: 0, log: []))
        Thread.detachNewThread { [self] in
            let began = Date()
            while pause(plan.interval, whileRunning: id, pid: pid) {
                let result = runCheck(id, plan)
                guard let row = try? metadata.container(id: id), row.status == .running, row.pid == pid else { return }
                record(row, result, counts: result.exitCode == 0 || Date().timeIntervalSince(began) >= plan.startPeriod, plan: plan)
            }
        }
    }

    /// Sleeps `seconds` in short steps; false as soon as the run has ended.
    private func pause(_ seconds: Double, whileRunning id: String, pid: Int?) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            guard let row = try? metadata.container(id: id), row.status == .running || row.status == .paused, row.pid == pid else { return false }
            usleep(useconds_t(max(0, min(deadline.timeIntervalSinceNow, 0.2)) * 1_000_000))
        } while deadline.timeIntervalSinceNow > 0
        return true
    }

    /// One check: the test exec'd with the container's process settings; a check past its
    /// timeout fails (the process is left to end on its own).
    private func runCheck(_ id: String, _ plan: HealthPlan) -> HealthResult {
        let start = Timestamp.now()
        let done = DispatchSemaphore(value: 0)
        let box = CheckBox()
        Thread.detachNewThread { [self] in
            defer { done.signal() }
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: bundleDir(id) + "/config.json"))
                guard var process = try JSONDecoder().decode(Spec.self, from: data).process else { return }
                process.args = plan.test
                process.terminal = false
                let params = JSONValue.object([("process", try JSONValue.parse(Array(JSONEncoder().encode(process)))), ("tty", .bool(false)), ("stdin", .bool(false))])
                let result = try shim(id).call("exec", params) { event in
                    if event["event"]?.string == "output", let b64 = event["data"]?.string, let bytes = Data(base64Encoded: b64) { box.append(bytes) }
                    return true
                }
                box.finish(result["exitCode"]?.int ?? -1)
            } catch {
                box.append(Data("\(error)".utf8))
                box.finish(-1)
            }
        }
        guard done.wait(timeout: .now() + plan.timeout) == .success else {
            return HealthResult(start: start, end: Timestamp.now(), exitCode: -1, output: "health check exceeded its timeout (\(plan.timeout) s)")
        }
        return HealthResult(start: start, end: Timestamp.now(), exitCode: box.code, output: box.text)
    }

    /// Folds a result into the status (last five kept); a change is a `health_status` event.
    private func record(_ c: Metadata.ContainerRow, _ result: HealthResult, counts: Bool, plan: HealthPlan) {
        lock.lock()
        var info = health[c.id] ?? HealthInfo(status: "starting", failingStreak: 0, log: [])
        let before = info.status
        info.log = Array((info.log + [result]).suffix(5))
        if result.exitCode == 0 {
            info.failingStreak = 0
            info.status = "healthy"
        } else if counts {
            info.failingStreak += 1
            if info.failingStreak >= plan.retries { info.status = "unhealthy" }
        }
        health[c.id] = info
        lock.unlock()
        guard info.status != before else { return }
        logged("record the health of \(c.id)") {
            try metadata.write(EventDraft(namespace: c.namespace, type: .container, action: .healthStatus, id: c.id,
                                          attributes: ["name": c.name, "healthStatus": info.status])) { _ in }
        }
    }

    func setHealth(_ id: String, _ info: HealthInfo?) {
        lock.lock(); defer { lock.unlock() }
        health[id] = info
    }

    func healthInfo(_ id: String) -> HealthInfo? {
        lock.lock(); defer { lock.unlock() }
        return health[id]
    }
}

/// A check's output (the first 4 KiB, as docker keeps) and exit code, filled on its thread.
private final class CheckBox: @unchecked Sendable {
    private let lock = NSLock()
    private var output = Data()
    private(set) var code = -1
    func append(_ d: Data) { lock.lock(); output.append(d.prefix(max(0, 4096 - output.count))); lock.unlock() }
    func finish(_ c: Int) { lock.lock(); code = c; lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: output, as: UTF8.self) }
}
