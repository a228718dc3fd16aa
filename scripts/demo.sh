#!/usr/bin/env bash
# The main job, end to end: set up and build, start scontainerd (private root and state under a
# temp dir), import the bundled busybox image, run a container from it through the daemon
# (sctr run --rm prints its output), then stop the daemon and remove everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh -c release
bin=$PWD/.build/release
work=$(mktemp -d /tmp/scontainerd-demo.XXXXXX)
daemon=
cleanup() {
    set +e  # the daemon's SIGTERM status must not end the cleanup early
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    for h in /sys/fs/cgroup/*/; do [ -d "${h}scontainerd-demo" ] && rmdir "${h}scontainerd-demo" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
spec-fixtures/build-oci-image.sh "$work/busybox.tar"
"$bin/scontainerd" --root "$work/root" --state "$work/state" 2>"$work/daemon.log" &
daemon=$!
export SCONTAINERD_SOCKET=$work/state/scontainerd.sock
for _ in $(seq 100); do [ -S "$SCONTAINERD_SOCKET" ] && break; sleep 0.05; done
echo "+ sctr import busybox.tar"
"$bin/sctr" import "$work/busybox.tar"
echo "+ sctr run --rm busybox:srunc ..."
"$bin/sctr" run --rm --cgroup-parent /scontainerd-demo busybox:srunc \
    sh -c 'echo "hello from a busybox container, run by scontainerd through sshim and srunc"; uname -srm; id'
