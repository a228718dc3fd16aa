#!/usr/bin/env bash
# Wall time of `run` of a /bin/true bundle: srunc vs runc, interleaved (A B A B) so machine
# drift cancels; prints medians, spreads and the ratio. Never part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-200}
bash scripts/setup.sh -c release >/dev/null
bundle=$(mktemp -d /tmp/srunc-bench.XXXXXX)
trap 'rm -rf "$bundle" /tmp/srunc-bench-root-*' EXIT
spec-fixtures/build-rootfs.sh "$bundle/rootfs"
python3 - "$bundle" <<'PY'
import json, sys
c = json.load(open("spec-fixtures/minimal.json"))
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(sys.argv[1] + "/config.json", "w"))
PY
declare -A bin=([srunc]="$PWD/.build/release/srunc" [runc]=/usr/sbin/runc)
declare -A times=()
for ((i = 0; i < runs; i++)); do
    for rt in srunc runc; do
        t0=$(date +%s%N)
        "${bin[$rt]}" --root /tmp/srunc-bench-root-$rt run --bundle "$bundle" "b$i" >/dev/null
        t1=$(date +%s%N)
        times[$rt]+="$(( (t1 - t0) / 1000 )) "
    done
done
stats() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {printf "%.2f %.2f %.2f", a[int(NR/2)+1]/1000, a[int(NR*0.1)+1]/1000, a[int(NR*0.9)]/1000}'; }
printf '%-8s %10s %10s %10s\n' runtime "median ms" "p10 ms" "p90 ms"
for rt in srunc runc; do read -r med p10 p90 <<<"$(echo "${times[$rt]}" | stats)"; declare "med_$rt=$med"; printf '%-8s %10s %10s %10s\n' "$rt" "$med" "$p10" "$p90"; done
awk -v a="$med_srunc" -v b="$med_runc" 'BEGIN {printf "srunc/runc median ratio: %.2f\n", a / b}'
