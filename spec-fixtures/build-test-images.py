#!/usr/bin/env python3
"""Builds the images the daemon tests import, deterministically, from a busybox rootfs dir.

usage: build-test-images.py ROOTFS OUTDIR

OUTDIR/layered/            OCI image layout, test/layered:layout (busybox + data + whiteouts)
OUTDIR/layered-oci.tar     the same as an oci-archive, test/layered:oci
OUTDIR/layered-docker.tar  the same as a docker-archive (docker save), test/layered:docker
OUTDIR/base-oci.tar        busybox + data only, test/base:1 (shares two layers with layered)
OUTDIR/arm64.tar           an index with a linux/arm64 manifest only
OUTDIR/mismatch.tar        a layer whose bytes do not match its digest
OUTDIR/size-lie.tar        layered's layers, one declared with the wrong size
OUTDIR/corrupt.tar         not a tar at all
OUTDIR/hostile-*.tar       one hostile layer each: dotdot, symlink, hardlink
OUTDIR/bomb.tar            a layer of 128 MiB of zeros, 128 KiB compressed (written last: the
                           test harness takes its presence as "the set is complete")
"""
import gzip, hashlib, io, json, os, sys, tarfile

rootfs, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)


def info(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, link=""):
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.mtime, t.uid, t.gid, t.linkname = kind, mode, 0, 0, 0, link
    t.size = len(data) if kind == tarfile.REGTYPE else 0
    return t, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def layer(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for t, f in entries:
            tar.addfile(t, f)
    return buf.getvalue()


def busybox_layer():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                t = tar.gettarinfo(full, os.path.relpath(full, rootfs))
                t.mtime, t.uid, t.gid, t.uname, t.gname = 0, 0, 0, "", ""
                with (open(full, "rb") if t.isreg() else io.BytesIO()) as f:
                    tar.addfile(t, f if t.isreg() else None)
    return buf.getvalue()


D = tarfile.DIRTYPE
base = busybox_layer()
data = layer([info("data", D, mode=0o755), info("data/a", data=b"a\n"), info("data/b", data=b"b\n"),
              info("opq", D, mode=0o755), info("opq/x", data=b"x\n"), info("opq/y", data=b"y\n")])
whiteouts = layer([info("data", D, mode=0o755), info("data/.wh.a"), info("opq", D, mode=0o755),
                   info("opq/.wh..wh..opq"), info("opq/z", data=b"z\n"), info("layer2", data=b"top\n")])


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def gz(b):
    return gzip.compress(b, mtime=0)


def image(layers, arch="amd64", size_lie=0, exposed=None):
    """Blobs {digest: bytes} and the manifest descriptor for an image of uncompressed `layers`
    (the last layer's declared size off by `size_lie`; `exposed` ports in its config)."""
    blobs, descs = {}, []
    for raw in layers:
        z = gz(raw)
        blobs[sha(z)] = z
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(z), "size": len(z)})
    descs[-1]["size"] += size_lie
    run = {"Cmd": ["sh"], "Env": ["PATH=/bin:/usr/bin"]}
    if exposed:
        run["ExposedPorts"] = {p: {} for p in exposed}
    config = json.dumps({"architecture": arch, "os": "linux", "config": run,
                         "rootfs": {"type": "layers", "diff_ids": [sha(l) for l in layers]}}, sort_keys=True).encode()
    blobs[sha(config)] = config
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
                           "layers": descs}, sort_keys=True).encode()
    blobs[sha(manifest)] = manifest
    return blobs, {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest),
                   "platform": {"architecture": arch, "os": "linux"}}


def layout_files(blobs, manifests):
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
             "index.json": json.dumps({"schemaVersion": 2, "manifests": manifests}, sort_keys=True).encode()}
    for d, b in blobs.items():
        files["blobs/sha256/" + d[7:]] = b
    return files


def write_tar(path, files):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            t, f = info(name, data=files[name])
            tar.addfile(t, f)


def named(desc, name):
    return dict(desc, annotations={"io.containerd.image.name": name})


layered_blobs, layered = image([base, data, whiteouts])
for name, b in layout_files(layered_blobs, [named(layered, "test/layered:layout")]).items():
    os.makedirs(os.path.dirname(os.path.join(out, "layered", name)) or ".", exist_ok=True)
    with open(os.path.join(out, "layered", name), "wb") as f:
        f.write(b)
write_tar(os.path.join(out, "layered-oci.tar"), layout_files(layered_blobs, [named(layered, "test/layered:oci")]))

# docker save: manifest.json, the config as <hex>.json, each layer as <dir>/layer.tar (uncompressed).
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"], "Env": ["PATH=/bin:/usr/bin"]},
                     "rootfs": {"type": "layers", "diff_ids": [sha(l) for l in (base, data, whiteouts)]}}, sort_keys=True).encode()
files = {sha(config)[7:] + ".json": config}
for l in (base, data, whiteouts):
    files[sha(l)[7:] + "/layer.tar"] = l
files["manifest.json"] = json.dumps([{"Config": sha(config)[7:] + ".json", "RepoTags": ["test/layered:docker"],
                                      "Layers": [sha(l)[7:] + "/layer.tar" for l in (base, data, whiteouts)]}]).encode()
write_tar(os.path.join(out, "layered-docker.tar"), files)

base_blobs, base_desc = image([base, data])
write_tar(os.path.join(out, "base-oci.tar"), layout_files(base_blobs, [named(base_desc, "test/base:1")]))

# An image with a 12 MiB layer that does not compress (deterministic bytes), for chunked uploads.
noise = b"".join(hashlib.sha256(b"srunc-%d" % i).digest() for i in range((12 << 20) // 32))
big_blobs, big_desc = image([base, layer([info("noise.bin", data=noise)])])
write_tar(os.path.join(out, "big-oci.tar"), layout_files(big_blobs, [named(big_desc, "test/big:1")]))

# An image that exposes ports, for -P.
web_blobs, web_desc = image([base, data], exposed=["80/tcp", "8081/tcp"])
write_tar(os.path.join(out, "web-oci.tar"), layout_files(web_blobs, [named(web_desc, "test/web:1")]))

arm_blobs, arm = image([data], arch="arm64")
index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [arm]}).encode()
arm_blobs[sha(index)] = index
write_tar(os.path.join(out, "arm64.tar"), layout_files(arm_blobs, [{"mediaType": "application/vnd.oci.image.index.v1+json",
                                                                      "digest": sha(index), "size": len(index),
                                                                      "annotations": {"io.containerd.image.name": "test/arm:1"}}]))

bad_blobs, bad = image([layer([info("only-in-mismatch", data=b"original\n")])])
layer_digest = [d for d, b in bad_blobs.items() if b[:2] == b"\x1f\x8b"][0]
bad_blobs[layer_digest] = gz(layer([info("evil", data=b"changed\n")]))
write_tar(os.path.join(out, "mismatch.tar"), layout_files(bad_blobs, [named(bad, "test/mismatch:1")]))

# Shares layered's layers, but declares the second one a byte longer than it is.
lie_blobs, lie = image([base, data], size_lie=1)
write_tar(os.path.join(out, "size-lie.tar"), layout_files(lie_blobs, [named(lie, "test/size-lie:1")]))

with open(os.path.join(out, "corrupt.tar"), "wb") as f:
    f.write(b"this is not a tar archive\n" * 40)

marker = "/tmp/srunc-hostile-escape"
hostile = {
    "dotdot": [info("../../../../.." + marker, data=b"escaped\n")],
    "symlink": [info("link", tarfile.SYMTYPE, link="/tmp"), info("link/srunc-hostile-escape", data=b"escaped\n")],
    "hardlink": [info("shadow", tarfile.LNKTYPE, link="/etc/shadow")],
}
for kind, entries in hostile.items():
    blobs, desc = image([layer(entries)])
    write_tar(os.path.join(out, "hostile-%s.tar" % kind), layout_files(blobs, [named(desc, "test/hostile:" + kind)]))

bomb_blobs, bomb = image([layer([info("zeros", data=bytes(128 << 20))])])
write_tar(os.path.join(out, "bomb.tar"), layout_files(bomb_blobs, [named(bomb, "test/bomb:1")]))
