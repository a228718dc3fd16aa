#!/bin/sh
# crun on a hybrid cgroup host: crun refuses hybrid mode, so each call runs in a private mount
# namespace without the (empty) cgroup2 mount. Tests hand this to sshim as its runtime.
exec unshare --mount --propagation private sh -c '
    if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
    exec crun "$@"' crun "$@"
