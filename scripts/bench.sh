#!/usr/bin/env bash
# `make bench`: installs the peers (crun, umoci, conmon, containerd), builds release binaries,
# compiles the floor, and runs bench/bench.py in a private mount namespace without the empty
# cgroup2 mount (crun refuses hybrid hosts; all runtimes run in the same namespace). Prints
# the table; never part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh -c release >/dev/null
missing=()
for p in crun umoci conmon containerd; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; fi
work=$(mktemp -d /tmp/srunc-bench.XXXXXX)
cleanup() {
    for h in /sys/fs/cgroup/*/; do [ -d "${h}srunc-bench" ] && find "${h}srunc-bench" -depth -type d -exec rmdir {} + 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
spec-fixtures/build-rootfs.sh "$work/rootfs"
gcc -O2 -o "$work/floor" bench/floor.c
# The host's mount namespace (with the cgroup2 mount), for the rows that need it: this shell's.
export HOST_MNT_NS=/proc/$$/ns/mnt
unshare --mount --propagation private sh -c '
    if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
    exec python3 bench/bench.py "$0" "$1"' "$work" "$PWD"
