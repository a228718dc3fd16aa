#!/bin/sh
# Builds the busybox fixture as an OCI image archive (oci-archive: a tar of an OCI image layout)
# deterministically, for clients that import images (ctr, podman, scontainerd).
# Usage: build-oci-image.sh OUT.tar [REF-NAME]
# With ROOTFS=DIR in the environment the image holds that tree (numeric owners kept) instead of
# the busybox fixture.
set -eu
out=${1:?usage: build-oci-image.sh OUT.tar [REF]}
ref=${2:-docker.io/library/busybox:srunc}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -n "${ROOTFS:-}" ] || "$here/build-rootfs.sh" "$work/rootfs"
mkdir -p "$work/layout/blobs/sha256"
blob() { # FILE -> digest hex; moves FILE into blobs
    h=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$work/layout/blobs/sha256/$h"; echo "$h"
}
if [ -n "${ROOTFS:-}" ]; then
    tar --sort=name --numeric-owner -C "$ROOTFS" -cf "$work/layer.tar" .
else
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/rootfs" -cf "$work/layer.tar" .
fi
diffid=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n "-${GZIP_LEVEL:-9}" "$work/layer.tar"
lsize=$(stat -c %s "$work/layer.tar.gz")
layer=$(blob "$work/layer.tar.gz")
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"spec-fixtures/build-rootfs.sh"}]}' "$diffid" > "$work/config.json"
csize=$(stat -c %s "$work/config.json")
config=$(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' "$config" "$csize" "$layer" "$lsize" > "$work/manifest.json"
msize=$(stat -c %s "$work/manifest.json")
manifest=$(blob "$work/manifest.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"srunc"}}]}' "$manifest" "$msize" "$ref" > "$work/layout/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$work/layout/oci-layout"
find "$work/layout" -exec touch -h -d @0 {} +
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/layout" -cf "$out" .
