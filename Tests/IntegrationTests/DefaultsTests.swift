import Foundation
import Testing

/// A Debian 12 image (debootstrap from Debian's mirror), built once per machine and kept.
enum DebianImage {
    static let reference = "debian:srunc"
    static let archive = cachedImageArchive("srunc-debian-image.tar", script: "build-debian-image.sh")
}

/// docker's defaults for sctr containers (issue 14): capabilities, the seccomp filter, masked
/// paths, the environment, and the options that change them.
@Suite("docker's defaults")
struct DefaultsTests {
    static let image = "test/layered:oci"
    /// CapEff, NoNewPrivs and Seccomp of the container's init, in /proc's order.
    static let status = "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/1/status | tr -s '\\t ' ' '"

    /// The host's bounding set as /proc/self/status shows it: what privileged containers get.
    static var hostBounding: String {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        return status.split(separator: "\n").first { $0.hasPrefix("CapBnd:") }.map { String($0.dropFirst(7)).trimmingCharacters(in: .whitespaces) } ?? ""
    }

    @Test("docker's capabilities, seccomp filter and environment by default")
    func defaults() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let r = try d.run(["--rm", "--hostname", "box"], Self.image, ["sh", "-c", Self.status + "; echo HOSTNAME=$HOSTNAME TERM=$TERM; cat /proc/timer_list | wc -c"])
        // /proc/timer_list is masked (an empty file), as docker masks it.
        #expect(r.code == 0 && r.stdout == "CapEff: 00000000a80425fb\nNoNewPrivs: 0\nSeccomp: 2\nHOSTNAME=box TERM=\n0\n", "\(r)")
        // CAP_CHOWN is docker's; unshare is refused by the filter (and so is a new user namespace).
        let chown = try d.run(["--rm"], Self.image, ["sh", "-c", "touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u /tmp/f"])
        #expect(chown.stdout == "1000\n", "\(chown)")
        let refused = try d.run(["--rm"], Self.image, ["unshare", "-U", "true"])
        #expect(refused.code != 0 && refused.stderr.contains("Operation not permitted"), "\(refused)")
        let unconfined = try d.run(["--rm", "--security-opt", "seccomp=unconfined"], Self.image, ["sh", "-c", "unshare -U true && grep Seccomp: /proc/1/status"])
        #expect(unconfined.code == 0 && unconfined.stdout.hasSuffix("0\n"), "\(unconfined)")
    }

    @Test("--privileged, --cap-add ALL, --cap-drop ALL, no-new-privileges, a profile file, -t's TERM")
    func options() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let privileged = try d.run(["--rm", "--privileged"], Self.image, ["sh", "-c", Self.status + "; [ -c /dev/fuse ] && echo fuse"])
        #expect(privileged.code == 0 && privileged.stdout == "CapEff: \(Self.hostBounding)\nNoNewPrivs: 0\nSeccomp: 0\nfuse\n", "\(privileged)")
        let all = try d.run(["--rm", "--cap-add", "ALL"], Self.image, ["grep", "CapEff:", "/proc/1/status"])
        #expect(all.stdout.hasSuffix(Self.hostBounding + "\n"), "\(all)")
        let none = try d.run(["--rm", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"], Self.image, ["sh", "-c", Self.status])
        #expect(none.stdout == "CapEff: 0000000000000000\nNoNewPrivs: 1\nSeccomp: 2\n", "\(none)")
        let profile = d.dir + "/profile.json"
        try #"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#
            .write(toFile: profile, atomically: true, encoding: .utf8)
        let custom = try d.run(["--rm", "--security-opt", "seccomp=" + profile], Self.image, ["mkdir", "/tmp/d"])
        #expect(custom.code != 0 && custom.stderr.contains("Permission denied"), "\(custom)")
        let bad = try d.run(["--rm", "--security-opt", "apparmor=unconfined"], Self.image, ["true"])
        #expect(bad.code != 0 && bad.stderr.contains("apparmor is not supported"), "\(bad)")
        let command = [DaemonInstance.binDir + "/sctr", "run", "-it", "--rm", "--cgroup-parent", "/" + d.name, Self.image,
                       "sh", "-c", "echo TERM=$TERM"].map(shellQuoted).joined(separator: " ")
        let tty = try executeClient("/usr/bin/script", ["-qec", command, "/dev/null"], env: ["SCONTAINERD_SOCKET": d.socketPath])
        #expect(tty.stdout.contains("TERM=xterm"), "\(tty)")
        // exec -t: docker's TERM, and the caller's window size from the first instruction on.
        #expect(try d.run(["-d", "--name", "bg"], Self.image, ["sleep", "1000"]).code == 0)
        let exec = [DaemonInstance.binDir + "/sctr", "exec", "-it", "bg", "sh", "-c", "stty size; echo TERM=$TERM"].map(shellQuoted).joined(separator: " ")
        let execTTY = try executeClient("/usr/bin/script", ["-qec", "stty rows 24 cols 80; " + exec, "/dev/null"], env: ["SCONTAINERD_SOCKET": d.socketPath])
        #expect(execTTY.stdout.contains("24 80") && execTTY.stdout.contains("TERM=xterm"), "\(execTTY)")
    }

    @Test("in a Debian image: apt-get drops privileges, chown and su work, seccomp is on and refuses unshare")
    func debian() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.sctr(["import", DebianImage.archive]).code == 0)
        // No network in here (nothing may leave the machine): apt gets as far as resolving the
        // mirror, past its setgroups.
        let apt = try d.run(["--rm", "--network", "none"], DebianImage.reference, ["sh", "-c", "apt-get update 2>&1 | tail -2"])
        #expect(apt.stdout.contains("deb.debian.org") && !apt.stdout.contains("setgroups"), "\(apt)")
        let users = try d.run(["--rm"], DebianImage.reference, ["sh", "-c", "touch /tmp/f && chown nobody /tmp/f && stat -c %U /tmp/f && su nobody -s /bin/sh -c id && grep Seccomp: /proc/1/status"])
        #expect(users.code == 0 && users.stdout == "nobody\nuid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\nSeccomp:\t2\n", "\(users)")
        let refused = try d.run(["--rm"], DebianImage.reference, ["unshare", "-U", "true"])
        #expect(refused.code != 0 && refused.stderr.contains("Operation not permitted"), "\(refused)")
        let unconfined = try d.run(["--rm", "--security-opt", "seccomp=unconfined"], DebianImage.reference, ["unshare", "-U", "true"])
        #expect(unconfined.code == 0, "\(unconfined)")
    }

    @Test("--init runs docker-init as PID 1; -v makes a missing host directory")
    func initAndBindSources() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let r = try d.run(["--rm", "--init"], Self.image, ["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$"])
        #expect(r.code == 0 && r.stdout.hasPrefix("/sbin/docker-init -- sh -c") && !r.stdout.hasSuffix("\n1\n"), "\(r)")
        let source = d.dir + "/made/by/run"
        let bind = try d.run(["--rm", "-v", source + ":/data"], Self.image, ["sh", "-c", "echo kept > /data/f"])
        #expect(bind.code == 0, "\(bind)")
        #expect((try? String(contentsOfFile: source + "/f", encoding: .utf8)) == "kept\n")
    }
}
