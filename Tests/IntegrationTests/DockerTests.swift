import Foundation
import Testing

/// Docker Engine as a real client of the runtime (issue 13): its own dockerd with srunc as the
/// default runtime, beside the same daemon on runc; both must agree.
@Suite("Docker Engine") struct DockerTests {
    static let image = DockerInstance.image

    @Test("run, exec, -it, stop, restart policy and healthcheck", arguments: RuntimeUnderTest.all)
    func lifecycle(_ rt: RuntimeUnderTest) throws {
        let d = try DockerInstance(rt)
        defer { d.stop() }
        let run = try d.docker(["run", "--rm", Self.image, "sh", "-c", "echo hello; echo $HOME; exit 7"])
        #expect(run.code == 7 && run.stdout == "hello\n/root\n", "\(run)")
        let missing = try d.docker(["run", "--rm", Self.image, "/no/such/program"])
        #expect(missing.code == 127 && missing.stderr.contains("stat /no/such/program: no such file or directory"), "\(missing)")

        let id = try d.docker(["run", "-d", "--name", "long", Self.image, "sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!id.isEmpty)
        let exec = try d.docker(["exec", "long", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; exit 4"])
        #expect(exec.code == 4 && exec.stdout.hasPrefix("sh -c trap"), "\(exec)")
        let tty = try execute("/usr/bin/script", ["-qec", "/usr/bin/docker -H unix://\(d.socket) exec -it long sh -c 'tty; echo tty-ok'", "/dev/null"])
        #expect(tty.stdout.contains("/dev/pts/") && tty.stdout.contains("tty-ok"), "\(tty)")
        #expect(try d.docker(["stop", "-t", "10", "long"]).code == 0)
        #expect(try d.inspect("long", "{{.State.Status}} {{.State.ExitCode}}") == "exited 0", "a graceful stop: TERM reached the trap")

        #expect(try d.docker(["run", "-d", "--name", "flaky", "--restart", "on-failure:2", Self.image, "sh", "-c", "exit 3"]).code == 0)
        try eventually("two restarts, then exited") { try d.inspect("flaky", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}") == "2 exited 3" }

        #expect(try d.docker(["run", "-d", "--name", "checked", "--health-cmd", "test -f /ready", "--health-interval", "1s",
                              "--health-retries", "1", Self.image, "sh", "-c", "touch /ready; sleep 1000"]).code == 0)
        try eventually("the health check passes") { try d.inspect("checked", "{{.State.Health.Status}}") == "healthy" }
    }

    @Test("build with RUN steps, commit, cp, published ports and user networks by name", arguments: RuntimeUnderTest.all)
    func imagesPortsNetworks(_ rt: RuntimeUnderTest) throws {
        let d = try DockerInstance(rt)
        defer { d.stop() }
        let dockerfile = """
            FROM \(Self.image)
            RUN echo built > /built && id -u > /uid
            USER 1000
            RUN echo $HOME > /tmp/home
            CMD ["cat", "/built", "/uid", "/tmp/home"]
            """
        try dockerfile.write(toFile: d.dir + "/context/Dockerfile", atomically: true, encoding: .utf8)
        let build = try d.docker(["build", "-q", "-t", "srunc/built", d.dir + "/context"])
        #expect(build.code == 0, "\(build)")
        let built = try d.docker(["run", "--rm", "srunc/built"])
        #expect(built.code == 0 && built.stdout == "built\n0\n/home/user\n", "\(built)")

        #expect(try d.docker(["run", "-d", "--name", "box", Self.image, "sh", "-c", "echo committed > /c; sleep 1000"]).code == 0)
        try eventually("the container wrote its file") { try d.docker(["exec", "box", "cat", "/c"]).stdout == "committed\n" }
        #expect(try d.docker(["commit", "box", "srunc/committed"]).code == 0)
        #expect(try d.docker(["run", "--rm", "srunc/committed", "cat", "/c"]).stdout == "committed\n")
        try "from the host\n".write(toFile: d.dir + "/hostfile", atomically: true, encoding: .utf8)
        #expect(try d.docker(["cp", d.dir + "/hostfile", "box:/copied"]).code == 0)
        #expect(try d.docker(["exec", "box", "cat", "/copied"]).stdout == "from the host\n")
        #expect(try d.docker(["cp", "box:/c", d.dir + "/back"]).code == 0)
        #expect((try? String(contentsOfFile: d.dir + "/back", encoding: .utf8)) == "committed\n")

        let chosen = try freeLoopbackPort()
        #expect(try d.docker(["run", "-d", "--name", "web", "-p", "127.0.0.1:\(chosen):80", Self.image, "httpd", "-f", "-p", "80", "-h", "/etc"]).code == 0)
        let port = try d.docker(["port", "web", "80"]).stdout.split(separator: "\n").first.map { String($0.split(separator: ":").last ?? "") } ?? ""
        #expect(port == String(chosen))
        var page = ""
        try eventually("the published port answers") {
            page = try execute("/bin/busybox", ["wget", "-q", "-O", "-", "http://127.0.0.1:\(port)/hostname"]).stdout
            return !page.isEmpty
        }
        let hostname = try d.inspect("web", "{{.Config.Hostname}}")
        #expect(page == hostname + "\n", "docker's /etc/hostname, served from the container on port \(port): \(page) vs \(hostname)")

        #expect(try d.docker(["network", "create", "backend"]).code == 0)
        #expect(try d.docker(["run", "-d", "--name", "peer", "--network", "backend", Self.image, "sleep", "1000"]).code == 0)
        let ping = try d.docker(["run", "--rm", "--network", "backend", Self.image, "ping", "-c", "1", "-W", "5", "peer"])
        #expect(ping.code == 0 && ping.stdout.contains("1 packets received"), "\(ping)")
    }
}
