#!/usr/bin/env bash
# Sets up and runs the whole test suite: unit tests and real containers through srunc and runc.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
swift build --build-tests 2>&1 | tail -n 3
swift test --skip-build 2>&1
# The short fault-injection and soak run (make soak runs the long one).
python3 scripts/soak.py --quick
