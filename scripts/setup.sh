#!/usr/bin/env bash
# Installs srunc's Debian packages (idempotently: apt runs only for what is missing) and builds
# the package. Sourced by demo.sh and test.sh; safe to run again.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then echo "setup: run as root (containers need real namespaces and mounts)" >&2; exit 1; fi
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
packages=(libseccomp-dev libcap-dev libsqlite3-dev zlib1g-dev python3 busybox-static runc crun containerd podman conmon netavark aardvark-dns containernetworking-plugins iproute2 iptables docker.io debootstrap docker-registry skopeo apache2-utils openssl bpftool strace uidmap)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    # Packages with services (docker.io) must not start them: tests run private daemons.
    own_policy=false
    if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; own_policy=true; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if $own_policy; then rm -f /usr/sbin/policy-rc.d; fi
fi
cd "$(dirname "$0")/.."
# The static link warns about NSS functions FoundationEssentials carries; srunc never calls them.
swift build "$@" 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Write|Emitting)|statically linked applications|use of .mktemp' || true
test "${PIPESTATUS[0]}" = 0
