#!/usr/bin/env bash
# Fetches Debian's cloud kernel (the package linux-image-cloud-amd64 points
# to) and unpacks it under DIR (default .tmp/guest), with modules.dep, for
# the tests that boot it under QEMU to drive the real Linux NVMe/TCP
# initiator (internal/guest). It does not install the kernel on the host.
# Idempotent: a ready DIR is left alone.
set -euo pipefail
dir=${1:-.tmp/guest}
[ -f "$dir/ready" ] && exit 0
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
  apt-get update -qq
  pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt-get download writes into the current directory; a concurrent apt run
# holds the lock for a while, and a download may need a second try.
(cd "$tmp" && { apt-get download -o DPkg::Lock::Timeout=600 "$pkg" || apt-get download -o DPkg::Lock::Timeout=600 "$pkg"; })
rm -rf "$dir/root"
dpkg-deb -x "$tmp"/linux-image-*.deb "$dir/root"
kver=$(ls "$dir/root/lib/modules")
depmod -b "$dir/root" "$kver"
cp "$dir/root/boot/vmlinuz-$kver" "$dir/vmlinuz"
echo "$kver" > "$dir/kver"
touch "$dir/ready"
echo "guest kernel $kver in $dir"
