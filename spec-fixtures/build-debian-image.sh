#!/bin/sh
# A Debian 12 (bookworm, minbase) image for the tests of docker's defaults, from Debian's own
# mirror through debootstrap, as an oci-archive named docker.io/library/debian:srunc.
# Usage: build-debian-image.sh OUT.tar
set -eu
out=${1:?usage: build-debian-image.sh OUT.tar}
here=$(cd "$(dirname "$0")" && pwd)
command -v debootstrap >/dev/null || { echo "build-debian-image: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root/rootfs" http://deb.debian.org/debian >"$root/debootstrap.log" 2>&1 ||
    { tail -20 "$root/debootstrap.log" >&2; exit 1; }
rm -rf "$root/rootfs/var/cache/apt/archives"/*.deb "$root/rootfs/var/lib/apt/lists"/*_Packages
ROOTFS="$root/rootfs" GZIP_LEVEL=1 "$here/build-oci-image.sh" "$out" docker.io/library/debian:srunc
