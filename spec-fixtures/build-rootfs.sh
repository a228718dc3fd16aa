#!/bin/sh
# Builds a busybox rootfs from Debian's busybox-static, deterministically (fixed owners, modes
# and mtimes), so tests never need the network. Usage: build-rootfs.sh DEST
set -eu
dest=${1:?usage: build-rootfs.sh DEST}
bb=/bin/busybox
[ -x "$bb" ] || { echo "build-rootfs: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
cd "$tmp"
mkdir -p bin sbin usr/bin usr/sbin etc dev proc sys tmp root home/user var/log run
chmod 1777 tmp
chmod 0700 root
cp "$bb" bin/busybox
chmod 0755 bin/busybox
for applet in $("$bb" --list-full); do
    [ -e "$applet" ] || ln -s /bin/busybox "$applet"
done
cat > etc/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > etc/group <<'G'
root:x:0:
daemon:x:1:
tty:x:5:
users:x:100:user
user:x:1000:
nogroup:x:65534:
G
echo srunc-fixture > etc/hostname
chown -R 1000:1000 home/user
find . -exec touch -h -d @0 {} +
cd - >/dev/null
rm -rf "$dest"
mv "$tmp" "$dest"
