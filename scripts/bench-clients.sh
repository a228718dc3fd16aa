#!/usr/bin/env bash
# Wall time of one `ctr run --rm` (containerd's runc shim) and one `podman run --rm` (conmon)
# of the busybox image running /bin/true, with srunc and with runc as the runtime, interleaved
# (A B A B) so machine drift cancels. Private containerd and podman stores in a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-30}
bash scripts/setup.sh -c release >/dev/null
work=$(mktemp -d /tmp/srunc-bench-clients.XXXXXX)
cleanup() {
    set +e  # containerd's SIGTERM status must not end the cleanup early
    [ -n "${ctd_pid:-}" ] && kill "$ctd_pid" 2>/dev/null && wait "$ctd_pid" 2>/dev/null
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    for h in /sys/fs/cgroup/*/; do [ -d "$h/srunc-bench" ] && find "$h/srunc-bench" -depth -type d -exec rmdir {} + 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
spec-fixtures/build-oci-image.sh "$work/image.tar"
image=docker.io/library/busybox:srunc
declare -A bin=([srunc]="$PWD/.build/release/srunc" [runc]=/usr/sbin/runc)

cat > "$work/containerd.toml" <<TOML
version = 2
root = "$work/ctd/root"
state = "$work/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/ctd.sock"
[ttrpc]
  address = "$work/ctd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/ctd/opt"
TOML
containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
ctd_pid=$!
for _ in $(seq 100); do ctr -a "$work/ctd.sock" version >/dev/null 2>&1 && break; sleep 0.05; done
ctr -a "$work/ctd.sock" images import "$work/image.tar" >/dev/null

mkdir -p "$work/pm/tmp"
sed "s|@DIR@|$work/pm|g" spec-fixtures/podman-containers.conf > "$work/pm/containers.conf"
export CONTAINERS_CONF="$work/pm/containers.conf"
pm() { (cd "$work/pm" && podman --root "$work/pm/root" --runroot "$work/pm/run" --storage-driver overlay "$@"); }
pm load -i "$work/image.tar" >/dev/null 2>&1

declare -A times=()
for ((i = 0; i < runs; i++)); do
    for rt in srunc runc; do
        t0=$(date +%s%N)
        ctr -a "$work/ctd.sock" run --rm --runc-binary "${bin[$rt]}" --runc-root "$work/runc-$rt" \
            --fifo-dir "$work/fifo" --cgroup "/srunc-bench/c$i$rt" "$image" "c$i$rt" /bin/true
        t1=$(date +%s%N)
        pm run --rm --network none --cgroup-parent /srunc-bench --runtime "${bin[$rt]}" "$image" /bin/true
        t2=$(date +%s%N)
        times[ctr-$rt]+="$(( (t1 - t0) / 1000 )) "
        times[podman-$rt]+="$(( (t2 - t1) / 1000 )) "
    done
done
stats() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {printf "%.1f %.1f %.1f", a[int(NR/2)+1]/1000, a[int(NR*0.1)+1]/1000, a[int(NR*0.9)]/1000}'; }
printf '%-24s %10s %10s %10s %8s\n' "client run --rm /bin/true" "median ms" "p10 ms" "p90 ms" ratio
for client in ctr podman; do
    read -r base _ _ <<<"$(echo "${times[$client-runc]}" | stats)"
    for rt in runc srunc; do
        read -r med p10 p90 <<<"$(echo "${times[$client-$rt]}" | stats)"
        printf '%-24s %10s %10s %10s %8s\n' "$client + $rt" "$med" "$p10" "$p90" "$(awk -v a="$med" -v b="$base" 'BEGIN {printf "%.2f", a / b}')"
    done
done
