#!/usr/bin/env python3
"""srunc, sshim and scontainerd against runc, crun, conmon and containerd, on this machine, in
one run, interleaved (A B A B ...) so drift cancels. Prints medians, spreads and ratios.
Run through `make bench` (scripts/bench.sh): it installs the peers, builds release binaries,
compiles the floor and enters a private mount namespace where the empty cgroup2 mount is
hidden (crun refuses hybrid hosts); every runtime runs in that same namespace.

usage: bench.py WORKDIR REPO   (env RUNS, default 40)"""
import json, os, shutil, statistics, subprocess, sys, tarfile, time, io, random, gzip, hashlib
import concurrent.futures

work, repo = sys.argv[1], sys.argv[2]
runs = int(os.environ.get("RUNS", "40"))
rel = os.path.join(repo, ".build/release")
runtimes = {"srunc": os.path.join(rel, "srunc"), "runc": "/usr/sbin/runc", "crun": "/usr/bin/crun"}
rows = []
import atexit
atexit.register(lambda: report())


class Result:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


def sh(argv):
    """Runs argv with stderr in a file: a created container keeps the stdio it was given, so
    a pipe would not reach EOF until the container exits."""
    with open(os.path.join(work, "stderr"), "w+b") as err:
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=err)
        err.seek(0)
        return Result(r.returncode, err.read())


def output(argv):
    """stdout of a client command (sctr's own, never a container's stdio)."""
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout


def timed(argv):
    t = time.perf_counter()
    r = sh(argv)
    dt = (time.perf_counter() - t) * 1000
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv[:4]), r.stderr.decode()[-300:]))
    return dt


def stats(values):
    v = sorted(values)
    return statistics.median(v), v[len(v) // 10], v[(len(v) * 9) // 10]


def row(group, name, values, base=None, note=""):
    med, p10, p90 = stats(values)
    rows.append((group, name, med, p10, p90, base, note))
    return med


def bundle(name, args, resources=None):
    path = os.path.join(work, name)
    if os.path.exists(path):
        return path
    os.makedirs(path)
    subprocess.run(["cp", "-a", os.path.join(work, "rootfs"), path + "/rootfs"], check=True)
    c = json.load(open(os.path.join(repo, "spec-fixtures/minimal.json")))
    c["ociVersion"] = "1.0.2"  # crun 1.8 refuses newer
    c["process"]["args"] = args
    c["process"]["terminal"] = False
    if resources:
        c["linux"]["resources"] = resources
        c["linux"]["cgroupsPath"] = "/srunc-bench/" + name
    json.dump(c, open(path + "/config.json", "w"))
    return path


def interleave(names, one, n=runs):
    times = {k: [] for k in names}
    for i in range(n):
        for k in names:
            times[k].append(one(k, i))
    return times


# 1. run of a /bin/true bundle, and two floors: bare, and joining a cgroup in every hierarchy.
true_bundle = bundle("true", ["/bin/true"])
def run_one(k, i):
    if k == "floor":
        return timed([os.path.join(work, "floor"), true_bundle + "/rootfs"])
    if k == "floor+cgroups":
        return timed([os.path.join(work, "floor"), true_bundle + "/rootfs", "--cgroups", "srunc-bench-floor-%d" % i])
    return timed([runtimes[k], "--root", os.path.join(work, "state-" + k), "run", "--bundle", true_bundle, "r%d" % i])
t = interleave(["srunc", "runc", "crun", "floor", "floor+cgroups"], run_one)
crun_run = statistics.median(t["crun"])
floor = statistics.median(t["floor"])
floor_cgroups = statistics.median(t["floor+cgroups"])
for k in ["srunc", "runc", "crun", "floor", "floor+cgroups"]:
    row("run /bin/true", k, t[k], crun_run)
srunc_run = statistics.median(t["srunc"])

# 1b. The same with the host's cgroup2 mount in place (this namespace hides it for crun): srunc
# and runc join it too; srunc-v2 uses it alone, as on a v2-only host (clone3 into the cgroup).
# Each command enters the host's mount namespace (bench.sh's) through nsenter, the same cost for all.
HOST = ["nsenter", "--mount=" + os.environ.get("HOST_MNT_NS", "/proc/1/ns/mnt")]
def run_hybrid(k, i):
    if k == "floor+cgroups":
        return timed(HOST + [os.path.join(work, "floor"), true_bundle + "/rootfs", "--cgroups", "srunc-bench-floor-h%d" % i])
    binary = runtimes["srunc" if k.startswith("srunc") else k]
    env = ["env", "SRUNC_CGROUP2_MOUNT=/sys/fs/cgroup/unified"] if k == "srunc-v2" else []
    return timed(HOST + env + [binary, "--root", os.path.join(work, "state-h-" + k), "run", "--bundle", true_bundle, "h%d" % i])
hybrid = ["srunc", "runc", "srunc-v2", "floor+cgroups"]
t = interleave(hybrid, run_hybrid)
for k in hybrid:
    row("run /bin/true, cgroup2 mounted", k, t[k], statistics.median(t["runc"]), "unified only" if k == "srunc-v2" else "")
hybrid_ratio = statistics.median(t["srunc"]) / statistics.median(t["runc"])

# 2. create + start + delete, without and with limits.
limited = {"memory": {"limit": 64 << 20}, "pids": {"limit": 100}, "cpu": {"quota": 50000, "period": 100000}}
for label, b in [("create+start+delete", true_bundle), ("… with mem/pids/cpu limits", bundle("limited", ["/bin/true"], limited))]:
    def cycle(k, i):
        root = os.path.join(work, "state-" + k)
        cid = "c%d" % i
        t0 = time.perf_counter()
        for argv in (["create", "--bundle", b, cid], ["start", cid], ["delete", "--force", cid]):
            r = sh([runtimes[k], "--root", root] + argv)
            if r.returncode != 0:
                raise RuntimeError("%s %s: %s" % (k, argv[0], r.stderr.decode()[-300:]))
        return (time.perf_counter() - t0) * 1000
    t = interleave(["srunc", "runc", "crun"], cycle)
    base = statistics.median(t["crun"])
    for k in ["srunc", "runc", "crun"]:
        row(label, k, t[k], base)
    if label == "create+start+delete":
        srunc_cycle, crun_cycle = statistics.median(t["srunc"]), base

# 3. exec into a running container.
sleeper = bundle("sleeper", ["sleep", "1000"])
for k in runtimes:
    r = sh([runtimes[k], "--root", os.path.join(work, "state-" + k), "run", "--detach", "--bundle", sleeper, "sleeper"])
    if r.returncode:
        raise RuntimeError(r.stderr.decode())
t = interleave(list(runtimes), lambda k, i: timed([runtimes[k], "--root", os.path.join(work, "state-" + k), "exec", "sleeper", "/bin/true"]))
for k in runtimes:
    row("exec /bin/true", k, t[k], statistics.median(t["crun"]))
exec_ratio = statistics.median(t["srunc"]) / statistics.median(t["crun"])
for k in runtimes:
    sh([runtimes[k], "--root", os.path.join(work, "state-" + k), "delete", "--force", "sleeper"])


# 6. unpack of a synthetic layer: thousands of small files, into fresh directories.
def synthetic_layer(path, files=6000, seed=7):
    rnd = random.Random(seed)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in range(60):
            t = tarfile.TarInfo("usr/share/d%02d" % d); t.type = tarfile.DIRTYPE; t.mode = 0o755; tar.addfile(t)
        for f in range(files):
            data = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([200, 900, 3000, 9000, 20000]) // 8)) * 8
            t = tarfile.TarInfo("usr/share/d%02d/f%05d" % (f % 60, f)); t.size = len(data); t.mode = 0o644
            tar.addfile(t, io.BytesIO(data))
    raw = buf.getvalue()
    with open(path, "wb") as out:
        out.write(gzip.compress(raw, compresslevel=6, mtime=0))
    return len(raw)
layer = os.path.join(work, "layer.tar.gz")
raw_size = synthetic_layer(layer)
# umoci wants an OCI layout holding the layer.
layout = os.path.join(work, "layout")
os.makedirs(layout + "/blobs/sha256")
def blob(data, root=None):
    h = hashlib.sha256(data).hexdigest()
    open((root or layout) + "/blobs/sha256/" + h, "wb").write(data)
    return "sha256:" + h, len(data)
ld, ls = blob(open(layer, "rb").read())
diff = "sha256:" + hashlib.sha256(gzip.decompress(open(layer, "rb").read())).hexdigest()
cd, cs = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode())
md, ms = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                          "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls}]}).encode())
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
                                              "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, open(layout + "/index.json", "w"))
open(layout + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
unpackers = {
    "scontainerd": lambda d: [os.path.join(rel, "scontainerd"), "unpack-layer", layer, d],
    "tar -xzf": lambda d: ["tar", "-xzf", layer, "-C", d],
    "umoci": lambda d: ["umoci", "raw", "unpack", "--image", layout + ":bench", d + "/r"],
}
def unpack(k, i):
    d = os.path.join(work, "unpack-%s-%d" % (k.split()[0], i))
    os.makedirs(d)
    return timed(unpackers[k](d))
if shutil.which("umoci") is None:
    del unpackers["umoci"]
t = interleave(list(unpackers), unpack, n=max(5, runs // 4))
base = statistics.median(t["tar -xzf"])
mb = raw_size / 1e6
for k in unpackers:
    row("unpack %.0f MB, 6000 files" % mb, k, t[k], base, "%.0f MB/s" % (mb / (statistics.median(t[k]) / 1000)))
srunc_unpack, tar_unpack = statistics.median(t["scontainerd"]), base

# 6b. A 5-layer image (1200 files a layer): each layer into its own directory, as snapshotters
# keep them. scontainerd unpacks an image's missing layers in parallel; tar runs one at a time.
five = [os.path.join(work, "layer%d.tar.gz" % n) for n in range(5)]
five_raw = sum(synthetic_layer(path, files=1200, seed=n) for n, path in enumerate(five))
def unpack_five(k, i):
    dirs = [os.path.join(work, "five-%s-%d-%d" % (k.split()[0], i, n)) for n in range(5)]
    for d in dirs:
        os.makedirs(d)
    if k == "scontainerd":
        return timed([os.path.join(rel, "scontainerd"), "unpack-layer"] + [x for pair in zip(five, dirs) for x in pair])
    return timed(["sh", "-c", " && ".join("tar -xzf %s -C %s" % pair for pair in zip(five, dirs))])
t = interleave(["scontainerd", "tar -xzf"], unpack_five, n=max(5, runs // 4))
mb5 = five_raw / 1e6
for k in ("scontainerd", "tar -xzf"):
    row("unpack 5 layers, %.0f MB" % mb5, k, t[k], statistics.median(t["tar -xzf"]), "%.0f MB/s" % (mb5 / (statistics.median(t[k]) / 1000)))
srunc_unpack5, tar_unpack5 = statistics.median(t["scontainerd"]), statistics.median(t["tar -xzf"])

# 4 and 5 need images in the peers' stores and private daemons.
image_tar = os.path.join(work, "busybox.tar")
subprocess.run([os.path.join(repo, "spec-fixtures/build-oci-image.sh"), image_tar], check=True, stdout=subprocess.DEVNULL)
IMAGE = "docker.io/library/busybox:srunc"


def wait_for(check, seconds=10):
    end = time.time() + seconds
    while time.time() < end:
        if check():
            return True
        time.sleep(0.05)
    return False


def rollup(pid, pss=False):
    """(Rss kB, Private_Dirty kB) of a process; its Pss kB alone when `pss`."""
    vals = {}
    for line in open("/proc/%d/smaps_rollup" % pid):
        parts = line.split()
        if parts[0] in ("Rss:", "Private_Dirty:", "Pss:"):
            vals[parts[0]] = int(parts[1])
    return vals["Pss:"] if pss else (vals["Rss:"], vals["Private_Dirty:"])


def pids_matching(*words):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = open("/proc/%s/cmdline" % p, "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if all(w in cmd for w in words) and int(p) != os.getpid():
            out.append(int(p))
    return out


def shim_request(state_dir, method):
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.connect(state_dir + "/control.sock")
    s.sendall((json.dumps({"id": 1, "method": method}) + "\n").encode())
    f = s.makefile("rb")
    while True:
        m = json.loads(f.readline())
        if m.get("id") == 1:
            s.close()
            return m


# containerd, private.
ctd = os.path.join(work, "ctd")
os.makedirs(ctd)
open(ctd + "/config.toml", "w").write("""version = 2
root = "%s/root"
state = "%s/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "%s/c.sock"
[ttrpc]
  address = "%s/c.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "%s/opt"
""" % (ctd, ctd, ctd, ctd, ctd))
ctd_log = open(ctd + "/log", "w")
containerd = subprocess.Popen(["containerd", "--config", ctd + "/config.toml"], stdout=ctd_log, stderr=ctd_log)
CTR = ["ctr", "--address", ctd + "/c.sock"]
wait_for(lambda: sh(CTR + ["version"]).returncode == 0)
sh(CTR + ["images", "import", image_tar])
def ctr_run(name, args, detach=False):
    return [*CTR, "run", "-d" if detach else "--rm", "--runc-root", ctd + "/runc", "--fifo-dir", ctd + "/fifo",
            "--cgroup", "/srunc-bench/" + name, IMAGE, name] + args

# podman, private.
pm = os.path.join(work, "pm")
os.makedirs(pm + "/tmp")
open(pm + "/containers.conf", "w").write(open(os.path.join(repo, "spec-fixtures/podman-containers.conf")).read().replace("@DIR@", pm))
os.environ["CONTAINERS_CONF"] = pm + "/containers.conf"
PODMAN = ["podman", "--root", pm + "/root", "--runroot", pm + "/run", "--storage-driver", "overlay", "--runtime", "/usr/sbin/runc"]
sh(PODMAN + ["load", "-i", image_tar])

# scontainerd, private.
sd = os.path.join(work, "sd")
os.makedirs(sd)
sd_log = open(sd + "/log", "w")
scontainerd = subprocess.Popen([os.path.join(rel, "scontainerd"), "--root", sd + "/root", "--state", sd + "/state"], stdout=sd_log, stderr=sd_log)
os.environ["SCONTAINERD_SOCKET"] = sd + "/state/scontainerd.sock"
SCTR = [os.path.join(rel, "sctr")]
wait_for(lambda: sh(SCTR + ["version"]).returncode == 0)
sh(SCTR + ["import", image_tar])

try:
    # 4. Idle memory per container: 10 sleeping containers under each shim.
    subprocess.run(["sync"])
    n = 10
    shim_dirs = []
    for i in range(n):
        d = os.path.join(work, "shim-%d" % i)
        r = sh([os.path.join(rel, "sshim"), "--id", "m%d" % i, "--bundle", sleeper, "--state-dir", d, "--log", d + ".log",
                "--runtime", runtimes["srunc"], "--runtime-root", os.path.join(work, "state-shim")])
        if r.returncode:
            raise RuntimeError(r.stderr.decode())
        shim_request(d, "start")
        shim_dirs.append(d)
    for i in range(n):
        sh(PODMAN + ["run", "-d", "--network", "none", "--cgroup-parent", "/srunc-bench", "--name", "m%d" % i, IMAGE, "sleep", "1000"])
        sh(ctr_run("m%d" % i, ["sleep", "1000"], detach=True))
    time.sleep(1)
    for name, pids in [("sshim", pids_matching("sshim", "--state-dir " + work)),
                       ("conmon", pids_matching("conmon", pm)),
                       ("containerd-shim-runc-v2", pids_matching("containerd-shim-runc-v2", ctd + "/c.sock"))]:
        if not pids:
            rows.append(("idle shim memory (10)", name, float("nan"), 0, 0, None, "no process found"))
            continue
        rss, dirty = zip(*[rollup(p) for p in pids])
        rows.append(("idle shim RSS kB (10 each)", name, statistics.mean(rss), min(rss), max(rss), None,
                     "private dirty %.0f kB (%d processes)" % (statistics.mean(dirty), len(pids))))
        if name == "sshim":
            sshim_rss, sshim_dirty = statistics.mean(rss), statistics.mean(dirty)
        if name == "conmon":
            conmon_rss, conmon_dirty = statistics.mean(rss), statistics.mean(dirty)
    for d in shim_dirs:
        shim_request(d, "shutdown") if False else None
        import socket
        s = socket.socket(socket.AF_UNIX); s.connect(d + "/control.sock")
        s.sendall(b'{"id":1,"method":"shutdown","params":{"force":true}}\n'); s.recv(4096); s.close()
    sh(PODMAN + ["rm", "-a", "-f", "-t", "0"])
    for i in range(n):
        sh(CTR + ["task", "delete", "--force", "m%d" % i]); sh(CTR + ["containers", "delete", "m%d" % i])

    # 5. Daemon throughput: N run --rm of /bin/true, one after another and all at once.
    def through(kind, i):
        # No network on either side: ctr run gives a namespace with loopback only, as --network none.
        if kind == "scontainerd":
            return SCTR + ["run", "--rm", "--network", "none", "--cgroup-parent", "/srunc-bench", IMAGE, "/bin/true"]
        return ctr_run("t%d" % i, ["/bin/true"]) + []
    counter = [0]
    for mode in ("sequential", "concurrent"):
        rates = {}
        for kind in ("scontainerd", "containerd+ctr"):
            samples = []
            for rep in range(3):
                counter[0] += 1
                cmds = [through(kind, counter[0] * 100 + i) for i in range(10)]
                t0 = time.perf_counter()
                if mode == "sequential":
                    for c in cmds:
                        r = sh(c)
                        if r.returncode: raise RuntimeError("%s: %s" % (kind, r.stderr.decode()[-300:]))
                else:
                    with concurrent.futures.ThreadPoolExecutor(10) as ex:
                        for r in ex.map(sh, cmds):
                            if r.returncode: raise RuntimeError("%s: %s" % (kind, r.stderr.decode()[-300:]))
                samples.append(10 / (time.perf_counter() - t0))
            rates[kind] = samples
        base = statistics.median(rates["containerd+ctr"])
        for kind in ("scontainerd", "containerd+ctr"):
            med = statistics.median(rates[kind])
            rows.append(("run --rm x10 %s (runs/s)" % mode, kind, med, min(rates[kind]), max(rates[kind]), base, ""))
            if mode == "sequential" and kind == "scontainerd":
                sd_rate, ctd_rate = med, base
    # 5b. Networked runs: a bridge network and a published port. podman through netavark on a
    # private network; containerd+ctr with the CNI plugins and the host's first CNI config
    # (podman's 87-podman-bridge: bridge, portmap, firewall, tuning), without a port (ctr has
    # no flag for one).
    net = "srunc-bench-%d" % os.getpid()
    for c in (SCTR + ["network", "create", net], PODMAN + ["network", "create", net]):
        r = sh(c)
        if r.returncode: raise RuntimeError(r.stderr.decode())
    had_cni_bridge = os.path.exists("/sys/class/net/cni-podman0")
    def networked(kind, i):
        if kind == "scontainerd":
            return SCTR + ["run", "--rm", "--network", net, "-p", "127.0.0.1::80", "--cgroup-parent", "/srunc-bench", IMAGE, "/bin/true"]
        if kind == "podman (netavark)":
            return PODMAN + ["run", "--rm", "--network", net, "-p", "127.0.0.1::80", "--cgroup-parent", "/srunc-bench", IMAGE, "/bin/true"]
        return [*CTR, "run", "--rm", "--cni", "--runc-root", ctd + "/runc", "--fifo-dir", ctd + "/fifo", "--cgroup", "/srunc-bench/n%d" % i, IMAGE, "n%d" % i, "/bin/true"]
    kinds = ("scontainerd", "podman (netavark)", "containerd+ctr (CNI)")
    rates = {k: [] for k in kinds}
    try:
        for rep in range(3):
            for kind in kinds:
                counter[0] += 1
                cmds = [networked(kind, counter[0] * 100 + i) for i in range(10)]
                t0 = time.perf_counter()
                for c in cmds:
                    r = sh(c)
                    if r.returncode: raise RuntimeError("%s: %s" % (kind, r.stderr.decode()[-300:]))
                rates[kind].append(10 / (time.perf_counter() - t0))
    finally:
        sh(SCTR + ["network", "rm", net]); sh(PODMAN + ["network", "rm", "-f", net])
        if not had_cni_bridge:
            subprocess.run(["ip", "link", "del", "cni-podman0"], stderr=subprocess.DEVNULL)
    base = statistics.median(rates["podman (netavark)"])
    for kind in kinds:
        rows.append(("run --rm bridge+port x10 (runs/s)", kind, statistics.median(rates[kind]), min(rates[kind]), max(rates[kind]), base,
                     "no port" if "ctr" in kind else ""))
    net_rate, net_podman, net_ctd = statistics.median(rates["scontainerd"]), base, statistics.median(rates["containerd+ctr (CNI)"])

    # 6. Logs through the daemon vs straight from the shim: 1,000,000 records (~75 MB).
    r = sh(SCTR + ["run", "-d", "--name", "talker", "--cgroup-parent", "/srunc-bench", IMAGE, "sh", "-c",
                   "i=0; while [ $i -lt 200 ]; do seq 1 5000; i=$((i+1)); done; sleep 1000"])
    if r.returncode: raise RuntimeError(r.stderr.decode())
    talker = output(SCTR + ["inspect", "--format", "{{.ID}}", "talker"]).decode().strip()
    if not wait_for(lambda: output(SCTR + ["logs", "--tail", "1", "talker"]) == b"5000\n", seconds=180):
        raise RuntimeError("the talker did not finish writing its log")
    shim_dir = os.path.join(sd, "state", "shims", talker[:16])
    logs = {"sctr logs": [], "sshim ctl logs": []}
    for rep in range(3):
        for name, cmd in (("sctr logs", SCTR + ["logs", "talker"]), ("sshim ctl logs", [os.path.join(rel, "sshim"), "ctl", shim_dir, "logs"])):
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            logs[name].append((time.perf_counter() - t0) * 1000)
    base = statistics.median(logs["sshim ctl logs"])
    logs_ratio = statistics.median(logs["sctr logs"]) / base
    for name in ("sctr logs", "sshim ctl logs"):
        rows.append(("logs of 1M records (ms)", name, statistics.median(logs[name]), min(logs[name]), max(logs[name]), base, ""))
    sh(SCTR + ["rm", "-f", "talker"])
    # 7. Pull of a ~100 MB, 4-layer image from docker-registry on 127.0.0.1 (plain HTTP), cold
    # store each time: scontainerd (fetch and verify; it unpacks at first use), skopeo copy to a
    # directory, podman pull (fetch and unpack), ctr pull (fetch and unpack).
    pl = os.path.join(work, "pull-layout")
    os.makedirs(pl + "/blobs/sha256")
    def pblob(data):
        return blob(data, pl)
    layers, diffs = [], []
    for i in range(4):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = os.urandom(25 << 20)
            t = tarfile.TarInfo("data/part%d.bin" % i); t.size = len(data); t.mode = 0o644
            tar.addfile(t, io.BytesIO(data))
        raw = buf.getvalue()
        diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
        d_, s_ = pblob(gzip.compress(raw, compresslevel=1, mtime=0))
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d_, "size": s_})
    pcd, pcs = pblob(json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"]}, "rootfs": {"type": "layers", "diff_ids": diffs}}).encode())
    pmd, pms = pblob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                 "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": pcd, "size": pcs}, "layers": layers}).encode())
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": pmd, "size": pms,
                                                 "annotations": {"org.opencontainers.image.ref.name": "pull"}}]}, open(pl + "/index.json", "w"))
    open(pl + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
    import socket as _socket
    probe = _socket.socket(); probe.bind(("127.0.0.1", 0)); reg_port = probe.getsockname()[1]; probe.close()
    open(work + "/registry.yml", "w").write("version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s/registry}}\nhttp: {addr: \"127.0.0.1:%d\"}\n" % (work, reg_port))
    registry = subprocess.Popen(["docker-registry", "serve", work + "/registry.yml"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def registry_up():
            try:
                _socket.create_connection(("127.0.0.1", reg_port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(registry_up)
        REF = "127.0.0.1:%d/bench/pull:1" % reg_port
        r = sh(["skopeo", "copy", "--dest-tls-verify=false", "oci:%s:pull" % pl, "docker://" + REF])
        if r.returncode: raise RuntimeError(r.stderr.decode())
        pulls = {"scontainerd": [], "skopeo copy": [], "podman pull": [], "ctr pull": []}
        for rep in range(3):
            for kind in pulls:
                if kind == "scontainerd":
                    cmd, after = SCTR + ["pull", "-q", REF], [SCTR + ["rmi", REF], SCTR + ["image", "prune", "-a", "-f"]]
                elif kind == "skopeo copy":
                    target = os.path.join(work, "skopeo-%d" % rep)
                    cmd, after = ["skopeo", "copy", "--src-tls-verify=false", "docker://" + REF, "dir:" + target], [["rm", "-rf", target]]
                elif kind == "podman pull":
                    cmd, after = PODMAN + ["pull", "-q", "--tls-verify=false", REF], [PODMAN + ["rmi", "-f", REF]]
                else:
                    cmd, after = CTR + ["images", "pull", "--plain-http", REF], [CTR + ["images", "rm", "--sync", REF]]
                subprocess.run(["sync"])
                t0 = time.perf_counter()
                r = sh(cmd)
                elapsed = time.perf_counter() - t0
                if r.returncode: raise RuntimeError("%s: %s" % (kind, r.stderr.decode()[-300:]))
                pulls[kind].append(elapsed * 1000)
                for a in after: sh(a)
        base = statistics.median(pulls["skopeo copy"])
        notes = {"scontainerd": "fetch+verify", "skopeo copy": "fetch+verify to dir", "podman pull": "fetch+unpack", "ctr pull": "fetch+unpack"}
        for kind in pulls:
            rows.append(("pull 100 MB, 4 layers (ms)", kind, statistics.median(pulls[kind]), min(pulls[kind]), max(pulls[kind]), base, notes[kind]))
    finally:
        registry.terminate(); registry.wait()

    sd_rss, _ = rollup(scontainerd.pid)
    ctd_rss, _ = rollup(containerd.pid)
    rows.append(("daemon idle RSS kB", "scontainerd", sd_rss, sd_rss, sd_rss, ctd_rss, ""))
    rows.append(("daemon idle RSS kB", "containerd", ctd_rss, ctd_rss, ctd_rss, ctd_rss, ""))

    # 8. Scale: 0, 100, 500 idle containers under each engine; p50 of `run -d` and of a
    # listing, daemon RSS, and memory per container (shims' Pss + the daemon's growth) / N.
    levels = [int(x) for x in os.environ.get("SCALE", "0,100,500").split(",")]
    sh(SCTR + ["import", image_tar])  # the pull rows pruned the store
    engines = {
        "scontainerd": {"run": lambda n: SCTR + ["run", "-d", "--network", "none", "--cgroup-parent", "/srunc-bench", "--name", n, IMAGE, "sleep", "100000"],
                        "list": SCTR + ["ps"], "rm": lambda n: SCTR + ["rm", "-f", n], "shim": ("sshim", sd), "daemon": scontainerd.pid},
        "containerd+ctr": {"run": lambda n: ctr_run(n, ["sleep", "100000"], detach=True), "list": CTR + ["tasks", "ls"],
                           "rm": lambda n: ["sh", "-c", "%s task kill -s 9 %s; %s task delete --force %s; %s containers delete %s" % ((" ".join(CTR), n) * 3)],
                           "shim": ("containerd-shim-runc-v2", ctd + "/c.sock"), "daemon": containerd.pid},
        "podman (conmon)": {"run": lambda n: PODMAN + ["run", "-d", "--network", "none", "--cgroup-parent", "/srunc-bench", "--name", n, IMAGE, "sleep", "100000"],
                            "list": PODMAN + ["ps"], "rm": lambda n: PODMAN + ["rm", "-f", "-t", "0", n], "shim": ("conmon", pm), "daemon": None},
    }
    idle = {e: [] for e in engines}
    base_daemon = {e: (rollup(v["daemon"], pss=True) if v["daemon"] else 0) for e, v in engines.items()}
    scale_rows = {}
    def must(argv):
        r = sh(argv)
        if r.returncode: raise RuntimeError("%s: %s" % (" ".join(argv[:3]), r.stderr.decode()[-300:]))
    try:
        for level in levels:
            for e, v in engines.items():
                names = ["idle-%s-%d" % (e.split()[0].split("+")[0], i) for i in range(len(idle[e]), level)]
                with concurrent.futures.ThreadPoolExecutor(4) as ex:
                    list(ex.map(lambda n: must(v["run"](n)), names))
                idle[e] += names
                runs_ms, list_ms = [], []
                for i in range(10):
                    n = "probe-%s-%d-%d" % (e.split()[0].split("+")[0], level, i)
                    runs_ms.append(timed(v["run"](n)))
                    list_ms.append(timed(v["list"]))
                    must(v["rm"](n))
                shims = [rollup(p, pss=True) for p in pids_matching(*v["shim"])]
                daemon = rollup(v["daemon"], pss=True) if v["daemon"] else 0
                per = (sum(shims) + daemon - base_daemon[e]) / level if level else float("nan")
                rows.append(("scale %d idle: run -d p50 ms" % level, e, statistics.median(runs_ms), min(runs_ms), max(runs_ms), None, ""))
                rows.append(("scale %d idle: ps p50 ms" % level, e, statistics.median(list_ms), min(list_ms), max(list_ms), None, ""))
                rows.append(("scale %d idle: kB per container" % level, e, per, per, per, None,
                             "daemon Pss %d kB, %d shims" % (daemon, len(shims))))
                scale_rows[(e, level)] = (statistics.median(runs_ms), statistics.median(list_ms), per)
    finally:
        for e, v in engines.items():
            with concurrent.futures.ThreadPoolExecutor(4) as ex:
                list(ex.map(lambda n: sh(v["rm"](n)), idle[e]))
finally:
    for proc in (scontainerd, containerd):
        proc.terminate()
        proc.wait()
    subprocess.run([os.path.join(rel, "scontainerd"), "networks-down", sd + "/root", sd + "/state"], capture_output=True)
    for w in (work,):
        for p in pids_matching(w):
            try:
                os.kill(p, 9)
            except OSError:
                pass
    mounts = [l.split()[4] for l in open("/proc/self/mountinfo") if l.split()[4].startswith(work)]
    for m in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)

# Print (also when a section failed: every row measured so far, and the targets it allows).
def report():
    print("%-32s %-24s %10s %10s %10s %8s  %s" % ("benchmark (ms unless named)", "who", "median", "p10/min", "p90/max", "ratio", ""))
    for group, name, med, p10, p90, base, note in rows:
        print("%-32s %-24s %10.2f %10.2f %10.2f %8s  %s" % (group, name, med, p10, p90, "%.2f" % (med / base) if base else "", note))
    print()
    # Issue 18's targets, each with the measured value and met / NOT met.
    targets = []
    def target(what, value, ok, shown):
        targets.append((what, shown % value, "met" if ok else "NOT met"))
    def guarded(fn):
        try:
            fn()
        except (NameError, KeyError, ZeroDivisionError, IndexError) as e:
            targets.append((fn.__name__, "not measured (%s)" % e, "NOT met"))
    guarded(lambda: target("srunc run <= 0.7x crun", srunc_run / crun_run, srunc_run <= 0.7 * crun_run, "%.2fx"))
    guarded(lambda: target("srunc run <= 2x the floor that joins cgroups", srunc_run / floor_cgroups, srunc_run <= 2 * floor_cgroups, "%.2fx"))
    guarded(lambda: target("srunc run, cgroup2 mounted, vs runc (no target; runc's ratio)", hybrid_ratio, True, "%.2fx"))
    guarded(lambda: target("create+start+delete <= 0.5x crun", srunc_cycle / crun_cycle, srunc_cycle <= 0.5 * crun_cycle, "%.2fx"))
    guarded(lambda: target("exec <= 0.7x crun", exec_ratio, exec_ratio <= 0.7, "%.2fx"))
    guarded(lambda: target("unpack single layer >= 1.0x tar -xzf (tar's time / ours)", tar_unpack / srunc_unpack, srunc_unpack <= tar_unpack, "%.2fx"))
    guarded(lambda: target("unpack 5-layer image >= 1.0x tar -xzf (tar's time / ours)", tar_unpack5 / srunc_unpack5, srunc_unpack5 <= tar_unpack5, "%.2fx"))
    guarded(lambda: target("sctr logs <= 1.5x the shim's own", logs_ratio, logs_ratio <= 1.5, "%.2fx"))
    def memory():
        target("sshim RSS <= conmon's", sshim_rss / conmon_rss, sshim_rss <= conmon_rss, "%.2fx")
        target("sshim private dirty <= conmon's", sshim_dirty / conmon_dirty, sshim_dirty <= conmon_dirty, "%.2fx")
    def daemon():
        target("scontainerd sequential run --rm >= 3x containerd+ctr", sd_rate / ctd_rate, sd_rate >= 3 * ctd_rate, "%.2fx")
        share = 1000 / sd_rate - srunc_run
        target("scontainerd's own share of a run <= one bare srunc run (ms)", share, share <= srunc_run, "%.1f ms")
        target("scontainerd idle RSS <= 0.5x containerd's", sd_rss / ctd_rss, sd_rss <= 0.5 * ctd_rss, "%.2fx")
        target("networked run --rm rate >= podman's", net_rate / net_podman, net_rate >= net_podman, "%.2fx")
    def scale():
        lo, hi = scale_rows[("scontainerd", levels[0])], scale_rows[("scontainerd", levels[-1])]
        target("run -d p50 with %d idle / with %d (flat: <= 1.5x)" % (levels[-1], levels[0]), hi[0] / lo[0], hi[0] <= 1.5 * lo[0], "%.2fx")
        # Listing is linear by nature (every container is a row): its cost per container must be
        # small (no more than containerd's) and must not grow with the count (not quadratic).
        mid = scale_rows[("scontainerd", levels[1])]
        ctd_lo, ctd_hi = scale_rows[("containerd+ctr", levels[0])], scale_rows[("containerd+ctr", levels[-1])]
        per = (hi[1] - lo[1]) / (levels[-1] - levels[0])
        ctd_per = (ctd_hi[1] - ctd_lo[1]) / (levels[-1] - levels[0])
        target("ps ms per idle container, %d to %d, <= containerd's (%.3f)" % (levels[0], levels[-1], ctd_per), per, per <= ctd_per, "%.3f")
        early, late = (mid[1] - lo[1]) / (levels[1] - levels[0]), (hi[1] - mid[1]) / (levels[-1] - levels[1])
        target("ps not quadratic: ms per container %d-%d <= 1.5x %d-%d (+0.05)" % (levels[1], levels[-1], levels[0], levels[1]),
               late / max(early, 1e-9), late <= 1.5 * early + 0.05, "%.2fx")
        mine, theirs = scale_rows[("scontainerd", levels[-1])][2], scale_rows[("containerd+ctr", levels[-1])][2]
        target("memory per container <= containerd's", mine / theirs, mine <= theirs, "%.2fx")
    def pull():
        ours = [r for r in rows if r[0].startswith("pull") and r[1] == "scontainerd"][0]
        target("pull 100 MB <= skopeo copy's time", ours[2] / ours[5], ours[2] <= ours[5], "%.2fx")
    for fn in (memory, daemon, scale, pull):
        guarded(fn)
    print("%-72s %12s  %s" % ("target", "measured", ""))
    for what, value, verdict in targets:
        print("%-72s %12s  %s" % (what, value, verdict))
