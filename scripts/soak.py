#!/usr/bin/env python3
"""Fault injection and soak for scontainerd, sshim and srunc, as an operator would try them.

usage: soak.py [--quick] [--bin DIR]

Each scenario runs against a private daemon (root and state in a temp dir, containers under a
cgroup parent of its own) and ends with a census: shims, runtime states, state directories,
mounts, cgroups, the daemon's fds and its records must come back to where they started.
  rounds      N concurrent `sctr run --rm`, R times: every client gets its output and code 0
  crash       the same with the daemon killed (-9) at a random moment and restarted: every
              client gets its output or a clear error; no container outlives its record
  shim-kill   shims killed (-9) under running containers: each is reported exited (255)
  srunc-kill  srunc killed (-9) at random moments during creates
  create-kill `srunc create` alone killed (-9) 1-20 ms in, half of them through a joined
              namespace; then `delete --force`: no process, cgroup or state of it may remain
  disk-full   the root on a small tmpfs: an import and a chatty container on a full disk fail
              cleanly, and `scontainerd check` finds the store consistent afterwards
  fd-limit    the daemon with 64 fds: many runs and imports (1000 in the long run), its fd count flat
  memory      clients sending huge unterminated lines: refused, RSS back near idle
  vanishing   clients killed in the middle of attach, exec, logs -f and events
--quick is the short version `.ci/run` runs every time; `make soak` runs the full one.
Prints `soak: N passed, M failed` last; exits 1 if any failed.
"""
import argparse, json, os, random, shutil, signal, socket, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
IMAGE = "test/layered:oci"


def eventually(what, cond, timeout=60.0, step=0.02):
    """Waits until cond() is true; raises with `what` when `timeout` passes first."""
    deadline = time.time() + timeout
    while True:
        try:
            if cond():
                return
        except Exception:
            pass
        if time.time() > deadline:
            raise AssertionError("not within %ss: %s" % (timeout, what))
        time.sleep(step)


class Daemon:
    def __init__(self, bindir, work, name, root=None, prefix=(), flags=()):
        self.bin, self.work, self.name = bindir, work, name
        self.flags = list(flags)
        self.root = root or os.path.join(work, "root")
        self.state = os.path.join(work, "state")
        self.socket = os.path.join(self.state, "scontainerd.sock")
        self.cgroup = "/srunc-soak-%d-%s" % (os.getpid(), name)
        self.prefix = list(prefix)
        self.proc = None
        self.start()

    def start(self):
        log = open(os.path.join(self.work, "daemon.log"), "ab")
        self.proc = subprocess.Popen(self.prefix + [os.path.join(self.bin, "scontainerd"), "--root", self.root, "--state", self.state] + self.flags,
                                     stdout=log, stderr=log)
        eventually("the daemon answers", lambda: self.sctr(["version"])[0] == 0, timeout=30)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()

    def sctr(self, args, timeout=120, stdin=None):
        env = dict(os.environ, SCONTAINERD_SOCKET=self.socket)
        try:
            p = subprocess.run([os.path.join(self.bin, "sctr")] + args, env=env, capture_output=True, timeout=timeout,
                               stdin=stdin if stdin is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return (-1, "", "timed out after %ss" % timeout)
        return (p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))

    def run_rm(self, i):
        return self.sctr(["run", "--rm", "--cgroup-parent", self.cgroup, IMAGE, "echo", "hello-%d" % i])

    def remove_all(self):
        code, out, _ = self.sctr(["ps", "-aq", "--no-trunc"])
        ids = out.split()
        if ids:
            self.sctr(["rm", "-f"] + ids)

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def rss_kb(self):
        for line in open("/proc/%d/status" % self.proc.pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def census(self):
        """What the daemon's containers hold on the machine; all zero when it has none."""
        def count(d):
            # '@' is in no container id: the runtime's own entries (srunc's compiled-seccomp cache).
            return sum(1 for e in os.listdir(d) if not e.startswith("@")) if os.path.isdir(d) else 0
        mounts = sum(1 for l in open("/proc/self/mountinfo") if self.state in l.split()[4] or (self.root + "/") in l.split()[4])
        cgroups = 0
        for h in os.listdir("/sys/fs/cgroup"):
            d = "/sys/fs/cgroup/%s%s" % (h, self.cgroup)
            if os.path.isdir(d):
                cgroups += sum(1 for e in os.listdir(d) if os.path.isdir(os.path.join(d, e)))
        shims = sum(1 for p in os.listdir("/proc") if p.isdigit() and self.state in proc_cmdline(p) and "sshim" in proc_cmdline(p))
        code, out, _ = self.sctr(["ps", "-aq"])
        cni = sum(len(files) for _, _, files in os.walk(self.root + "/cni/results"))
        return {"netns": count(self.state + "/netns"), "cni attachments": cni, "shims": shims, "runtime": count(self.state + "/runtime"), "bundles": count(self.state + "/containers"),
                "shim dirs": count(self.state + "/shims"), "container dirs": count(self.root + "/containers"),
                "mounts": mounts, "cgroups": cgroups, "records": len(out.split()) if code == 0 else -1}

    def assert_clean(self, fds=None):
        empty = {k: 0 for k in self.census()}
        last = {}
        def clean():
            last.update(self.census())
            return last == empty and (fds is None or self.fds() == fds)
        try:
            eventually("a clean census", clean, timeout=60)
        except AssertionError:
            raise AssertionError("census not clean: %s, fds %s (was %s)" % (last, self.fds(), fds))

    def close(self):
        self.remove_all()
        self.stop()
        cleanup_host(self)


def proc_cmdline(pid):
    try:
        return open("/proc/%s/cmdline" % pid, "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cleanup_host(d):
    """Whatever a failed scenario left: processes, mounts, cgroups (by our own markers only),
    and the networks the (stopped) daemon leaves up, as docker does."""
    if os.path.exists(d.root + "/metadata.db"):
        subprocess.run([os.path.join(d.bin, "scontainerd"), "networks-down", d.root, d.state], capture_output=True)
    for p in os.listdir("/proc"):
        if p.isdigit() and d.state in proc_cmdline(p):
            try:
                os.kill(int(p), signal.SIGKILL)
            except OSError:
                pass
    for h in os.listdir("/sys/fs/cgroup"):
        top = "/sys/fs/cgroup/%s%s" % (h, d.cgroup)
        if os.path.isdir(top):
            for e in os.listdir(top):
                sub = os.path.join(top, e)
                if os.path.isdir(sub):
                    for pid in open(os.path.join(sub, "cgroup.procs")).read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except OSError:
                            pass
    for _ in range(3):
        for line in list(open("/proc/self/mountinfo"))[::-1]:
            point = line.split()[4]
            if point.startswith(d.work):
                subprocess.run(["umount", "-l", point], capture_output=True)
    for h in os.listdir("/sys/fs/cgroup"):
        top = "/sys/fs/cgroup/%s%s" % (h, d.cgroup)
        for dirpath, dirnames, _ in list(os.walk(top, topdown=False)) if os.path.isdir(top) else []:
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def concurrently(n, fn):
    results = [None] * n
    def one(i):
        results[i] = fn(i)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# Scenarios: each takes a fresh daemon and raises AssertionError on a failure.

def rounds(d, args):
    fds = d.fds()
    for r in range(args.rounds):
        results = concurrently(args.clients, d.run_rm)
        bad = [(i, res) for i, res in enumerate(results) if res != (0, "hello-%d\n" % i, "")]
        assert not bad, "round %d: %d of %d failed, first: %s" % (r, len(bad), args.clients, bad[0])
        d.assert_clean(fds)
    return "%d rounds of %d concurrent runs" % (args.rounds, args.clients)


def crash(d, args):
    results = [None] * args.clients
    finished = []
    def client(i):
        results[i] = d.run_rm(i)
        finished.append(i)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    # A random moment while the round is under way: after 1 to n/2 clients have finished.
    at = random.randint(1, args.clients // 2)
    eventually("%d clients finish" % at, lambda: len(finished) >= at, timeout=120)
    d.kill9()
    time.sleep(args.down)                 # the daemon stays down a while, as after a crash
    d.start()
    for t in threads:
        t.join()
    ok = sum(1 for i, r in enumerate(results) if r == (0, "hello-%d\n" % i, ""))
    unclear = [(i, r) for i, r in enumerate(results) if r != (0, "hello-%d\n" % i, "") and not (r[0] == 125 and r[2].startswith("sctr: "))]
    assert not unclear, "clients with neither their output nor a clear error: %s" % unclear[:3]
    d.remove_all()
    d.assert_clean()
    return "%d of %d clients finished, the rest got a clear error; nothing outlived its record" % (ok, args.clients)


def shim_kill(d, args):
    ids = []
    for i in range(args.shims):
        code, out, err = d.sctr(["run", "-d", "--cgroup-parent", d.cgroup, IMAGE, "sleep", "1000"])
        assert code == 0, err
        ids.append(out.strip())
    latencies = []
    for cid in ids:
        info = json.loads(d.sctr(["inspect", cid])[1])[0]
        shim = int(open("/proc/%d/stat" % info["pid"]).read().rsplit(")", 1)[1].split()[1])
        started = time.time()
        os.kill(shim, signal.SIGKILL)
        eventually("the lost container is reported", lambda: json.loads(d.sctr(["inspect", cid])[1])[0]["status"] == "exited", timeout=20)
        latencies.append(time.time() - started)
        info = json.loads(d.sctr(["inspect", cid])[1])[0]
        assert info["exitCode"] == 255 and "shim died" in info.get("error", ""), info
    d.remove_all()
    d.assert_clean()
    return "%d shims killed; reported after %.2f s at most (median %.2f s)" % (len(ids), max(latencies), sorted(latencies)[len(latencies) // 2])


def in_cgroup(pid, cgroup):
    try:
        return cgroup in open("/proc/%s/cgroup" % pid).read()
    except OSError:
        return False


def srunc_kill(d, args):
    stop = threading.Event()
    killed = [0]
    def killer():
        while not stop.is_set():
            for p in os.listdir("/proc"):
                c = proc_cmdline(p)
                # A container's init is srunc's clone until it execs: it is in the container's
                # cgroup by then, and killing it is killing the container, not the runtime.
                if p.isdigit() and c.split(" ")[0].endswith("/srunc") and d.state in c and not in_cgroup(p, d.cgroup) and random.random() < 0.3:
                    try:
                        os.kill(int(p), signal.SIGKILL)
                        killed[0] += 1
                    except OSError:
                        pass
            time.sleep(0.002)
    k = threading.Thread(target=killer)
    k.start()
    results = concurrently(args.srunc_runs, d.run_rm)
    stop.set()
    k.join()
    unclear = [(i, r) for i, r in enumerate(results) if r != (0, "hello-%d\n" % i, "") and not (r[0] == 125 and r[2].startswith("sctr: "))]
    assert not unclear, "clients with neither their output nor a clear error: %s" % unclear[:3]
    d.remove_all()
    d.assert_clean()
    ok = sum(1 for i, r in enumerate(results) if r[0] == 0)
    return "%d srunc processes killed in %d runs (%d ran to the end)" % (killed[0], args.srunc_runs, ok)


def create_kill(bindir, work, trials):
    """Issue 13's experiment: runc left cgroups in 14 of 50 and srunc orphans in 8 of 50."""
    srunc, state, bundle = os.path.join(bindir, "srunc"), os.path.join(work, "state"), os.path.join(work, "bundle")
    os.makedirs(bundle)
    subprocess.run(["cp", "-a", os.path.join(tempfile.gettempdir(), "srunc-fixture-rootfs"), os.path.join(bundle, "rootfs")], check=True)
    config = json.load(open(os.path.join(REPO, "spec-fixtures", "minimal.json")))
    config["process"]["args"] = ["sleep", "1000"]
    parent = "/srunc-soak-%d-create" % os.getpid()
    killed = 0
    try:
        for i in range(trials):
            cid = "ck-%d" % i
            config["linux"]["cgroupsPath"] = "%s/%s" % (parent, cid)
            spaces = [n for n in config["linux"]["namespaces"] if n["type"] != "uts"]
            config["linux"]["namespaces"] = spaces + [{"type": "uts", "path": "/proc/%d/ns/uts" % os.getpid()} if i % 2 else {"type": "uts"}]
            json.dump(config, open(os.path.join(bundle, "config.json"), "w"))
            p = subprocess.Popen([srunc, "--root", state, "create", "--bundle", bundle, cid],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(random.uniform(0.001, 0.020))  # fault injection: when to kill, not a wait
            p.send_signal(signal.SIGKILL)
            killed += p.wait() == -signal.SIGKILL
            subprocess.run([srunc, "--root", state, "delete", "--force", cid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # A create that got to the end is a container: delete --force removed it just now.
            leftovers = lambda: [q for q in os.listdir("/proc") if q.isdigit() and state in proc_cmdline(q)]
            eventually("no process of %s outlives its creator and delete --force" % cid, lambda: not leftovers(), timeout=10)
            cg = [h for h in os.listdir("/sys/fs/cgroup") if os.path.exists("/sys/fs/cgroup/%s%s/%s" % (h, parent, cid))]
            assert not cg, "%s: cgroup left in %s" % (cid, cg)
            assert not os.path.exists(os.path.join(state, cid)), "%s: state left" % cid
    finally:
        for h in os.listdir("/sys/fs/cgroup"):
            d = "/sys/fs/cgroup/%s%s" % (h, parent)
            if os.path.isdir(d):
                for c in os.listdir(d):
                    if os.path.isdir(os.path.join(d, c)):
                        try: os.rmdir(os.path.join(d, c))
                        except OSError: pass
                try: os.rmdir(d)
                except OSError: pass
    return "%d creates, %d killed mid-way; nothing left behind" % (trials, killed)


def disk_full(bindir, work, image_tar):
    root = os.path.join(work, "small-root")
    os.makedirs(root)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "soak-tmpfs", root], check=True)
    d = None
    try:
        # Leave about 1 MB: less than the image needs.
        filler = os.path.join(root, "filler")
        subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=1M", "count=23"], capture_output=True)
        # The daemon's own floor (--min-free-space) would refuse before the disk does: lowered.
        d = Daemon(bindir, work, "disk", root=root, flags=["--min-free-space", "1m"])
        code, out, err = d.sctr(["import", image_tar])
        assert code == 1 and ("No space left" in err or "space" in err), "import on a full disk: %s %s" % (code, err)
        d.stop()
        problems = subprocess.run([os.path.join(bindir, "scontainerd"), "check", root], capture_output=True, text=True)
        assert problems.returncode == 0, "store after a failed import: %s %s" % (problems.stdout, problems.stderr)
        # Room for the image, then a container that writes until the disk is full.
        os.truncate(filler, 12 << 20)
        d.start()
        code, out, err = d.sctr(["import", image_tar])
        assert code == 0, err
        code, out, err = d.sctr(["run", "--rm", "--cgroup-parent", d.cgroup, IMAGE, "sh", "-c",
                                 "i=0; while [ $i -lt 400000 ]; do echo line $i; i=$((i+1)); done; exit 3"], timeout=300)
        assert code == 3, "a chatty container on a full disk: %s %s" % (code, err[-300:])
        d.assert_clean()
        d.stop()
        problems = subprocess.run([os.path.join(bindir, "scontainerd"), "check", root], capture_output=True, text=True)
        assert problems.returncode == 0, "store after logging onto a full disk: %s %s" % (problems.stdout, problems.stderr)
        return "import refused on a full disk, store consistent; a container logging onto it ran to its exit code"
    finally:
        if d:
            d.stop()
            cleanup_host(d)
        subprocess.run(["umount", "-l", root], capture_output=True)


def fd_limit(d, args, image_tar):
    fds = d.fds()
    for i in range(args.limited_runs):
        res = d.run_rm(i)
        assert res == (0, "hello-%d\n" % i, ""), "run %d with 64 fds: %s" % (i, res)
    for i in range(args.imports):
        code, _, err = d.sctr(["import", image_tar])
        assert code == 0, "import %d with 64 fds: %s" % (i, err)
    d.assert_clean(fds)
    return "%d runs and %d imports under a 64-fd limit; fds %d before and after" % (args.limited_runs, args.imports, fds)


def memory(d, args):
    idle = d.rss_kb()
    def flood(i):
        s = socket.socket(socket.AF_UNIX)
        s.connect(d.socket)
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(args.flood_mb):
                s.sendall(chunk)
        except OSError:
            pass  # the daemon cut the line off
        s.close()
    concurrently(args.flooders, flood)
    assert d.sctr(["version"])[0] == 0, "the daemon still serves"
    peak = d.rss_kb()
    eventually("RSS back within 10 MB of idle (%d kB)" % idle, lambda: d.rss_kb() - idle < 10 * 1024, timeout=30)
    return "%d clients x %d MB unterminated: RSS idle %d kB, after %d kB, settled %d kB" % (args.flooders, args.flood_mb, idle, peak, d.rss_kb())


def vanishing(d, args):
    fds = d.fds()
    code, out, err = d.sctr(["run", "-d", "--cgroup-parent", d.cgroup, IMAGE, "sh", "-c", "while :; do echo tick; sleep 0.01; done"])
    assert code == 0, err
    cid = out.strip()
    env = dict(os.environ, SCONTAINERD_SOCKET=d.socket)
    sctr = os.path.join(d.bin, "sctr")
    kinds = [["logs", "-f", cid], ["exec", "-i", cid, "cat"], ["events"], ["run", "-i", "--rm", "--cgroup-parent", d.cgroup, IMAGE, "cat"]]
    procs = []
    for i in range(args.vanishing):
        procs.append(subprocess.Popen([sctr] + kinds[i % len(kinds)], env=env, stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    eventually("every client is connected", lambda: d.fds() >= fds + args.vanishing, timeout=30)
    for p in procs:
        p.kill()
        p.wait()
    d.remove_all()
    d.assert_clean(fds)
    return "%d clients killed mid-stream; fds back to %d" % (args.vanishing, fds)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bin", default=os.path.join(REPO, ".build", "debug"))
    ap.add_argument("--only", help="run only this scenario")
    args = ap.parse_args()
    full = not args.quick
    args.rounds, args.clients = (10, 200) if full else (1, 40)
    args.down = 10.0 if full else 1.0
    args.shims = 10 if full else 3
    args.srunc_runs = 60 if full else 20
    args.create_kills = 50 if full else 20
    args.limited_runs = 100 if full else 30
    args.imports = 1000 if full else 20
    args.flooders, args.flood_mb = (50, 20) if full else (10, 8)
    args.vanishing = 40 if full else 8
    random.seed(os.getpid())

    images = os.path.join(tempfile.gettempdir(), "srunc-test-images")
    image_tar = os.path.join(images, "layered-oci.tar")
    if not os.path.exists(image_tar):
        rootfs = os.path.join(tempfile.gettempdir(), "srunc-fixture-rootfs")
        if not os.path.exists(rootfs + "/bin/busybox"):
            subprocess.run(["sh", os.path.join(REPO, "spec-fixtures", "build-rootfs.sh"), rootfs], check=True)
        subprocess.run([sys.executable, os.path.join(REPO, "spec-fixtures", "build-test-images.py"), rootfs, images], check=True)

    passed = failed = 0
    def scenario(name, body, daemon_prefix=()):
        nonlocal passed, failed
        if args.only and args.only != name:
            return
        work = tempfile.mkdtemp(prefix="soak-%s-" % name, dir="/tmp")
        d = None
        started = time.time()
        try:
            if body is disk_full:
                result = disk_full(args.bin, work, image_tar)
            elif body is create_kill:
                result = create_kill(args.bin, work, args.create_kills)
            else:
                d = Daemon(args.bin, work, name, prefix=daemon_prefix)
                assert d.sctr(["import", image_tar])[0] == 0
                result = body(d)
            print("ok   %-10s %5.1fs  %s" % (name, time.time() - started, result), flush=True)
            passed += 1
        except Exception as e:
            print("FAIL %-10s %5.1fs  %s" % (name, time.time() - started, e), flush=True)
            log = os.path.join(work, "daemon.log")
            if os.path.exists(log):
                text = open(log).read()
                # Warnings and errors first (the tail alone is often only recovery's info lines).
                notable = [l for l in text.splitlines() if " warning " in l or " error " in l]
                print("     daemon warnings and errors:\n%s" % "\n".join(notable[-30:]), flush=True)
                print("     daemon log: %s" % text[-3000:], flush=True)
            failed += 1
        finally:
            if d:
                d.close()
            shutil.rmtree(work, ignore_errors=True)

    scenario("rounds", lambda d: rounds(d, args))
    scenario("crash", lambda d: crash(d, args))
    scenario("shim-kill", lambda d: shim_kill(d, args))
    scenario("srunc-kill", lambda d: srunc_kill(d, args))
    scenario("create-kill", create_kill)
    scenario("disk-full", disk_full)
    scenario("fd-limit", lambda d: fd_limit(d, args, image_tar), daemon_prefix=["prlimit", "--nofile=64:64"])
    scenario("memory", lambda d: memory(d, args))
    scenario("vanishing", lambda d: vanishing(d, args))
    print("soak: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
