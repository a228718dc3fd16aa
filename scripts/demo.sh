#!/usr/bin/env bash
# Sets up, builds srunc and runs a busybox container from a fixture bundle: the main job until
# scontainerd exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh -c release
bundle=$(mktemp -d /tmp/srunc-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
spec-fixtures/build-rootfs.sh "$bundle/rootfs"
cp spec-fixtures/minimal.json "$bundle/config.json"
echo "+ srunc run --bundle $bundle demo-$$"
.build/release/srunc run --bundle "$bundle" "demo-$$"
