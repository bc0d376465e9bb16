#!/usr/bin/env bash
# Build the kit stage: `kit-layer.sh BASE_ROOTFS DIR COMMIT` leaves DIR/{disk.raw,vmlinuz,initrd.img}.
# A copy of the base gets the checkout (at COMMIT) cloned into /root/lxclab, and `./kit setup` run there
# in a chroot at native speed; the Debian packages `lxclab seed` downloads are fetched into the caches
# the classroom and the lessons read, so the VM needs no network. Then the tree becomes an ext4 image.
set -euo pipefail
VM_CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$VM_CHECKOUT/scripts/vm/lib.sh"
base="${1:?usage: kit-layer.sh BASE_ROOTFS DIR COMMIT}" dir="${2:?}" commit="${3:?}"
root="$dir/rootfs"
trap 'vm_chroot_umount' EXIT

clone_checkout() {
  local bundle="$dir/checkout.bundle"
  git -C "$VM_CHECKOUT" bundle create -q "$bundle" HEAD
  git clone -q "$bundle" "$root/root/lxclab"
  git -C "$root/root/lxclab" -c advice.detachedHead=false checkout -q --detach "$commit"
  git -C "$root/root/lxclab" remote remove origin
  rm -f "$bundle"
  chmod 0700 "$root/root"
}

# What `lxclab seed` downloads: the pinned busybox-static files for amd64 and arm64, into root's and the
# lessons' caches and apt's archive, where a seed into a fresh cache (the tests') finds them offline.
fetch_seed_packages() {
  vm_chroot "$root" /root/lxclab/.venv/bin/python -c '
from lxclab.classroom import seed
for deb in seed.fetch_packages(seed.default_cache_dir()).values():
    print("vm: seed package", deb)
'
  mkdir -p "$root/root/lxclab/_build/lesson-home/cache"
  cp -a "$root"/root/.lxclab/cache/*.deb "$root/root/lxclab/_build/lesson-home/cache/"
  cp -a "$root"/root/.lxclab/cache/*.deb "$root/var/cache/apt/archives/"
}

# setup.sh stops Debian's docker-registry service (it holds the classroom's port 5000) only where systemd
# runs, and a chroot has none: disable it here, as setup would have on the booted machine.
disable_registry_service() {
  vm_chroot "$root" systemctl disable --quiet docker-registry
}

run_setup() {
  vm_chroot_share_network "$root"
  vm_chroot_mount "$root"
  vm_chroot "$root" "${VM_CA_ENV[@]}" bash -c 'cd /root/lxclab && ./kit setup'
  vm_chroot "$root" apt-get clean
  fetch_seed_packages
  disable_registry_service
  rm -rf "$root"/root/.cache/pip "$root"/root/.npm
  vm_chroot_umount
  vm_chroot_unshare_network "$root"
}

make_disk() {
  cp "$(ls -v "$root"/boot/vmlinuz-* | tail -1)" "$dir/vmlinuz"
  cp "$(ls -v "$root"/boot/initrd.img-* | tail -1)" "$dir/initrd.img"
  rm -f "$dir/disk.raw"
  truncate -s "$VM_DISK_SIZE" "$dir/disk.raw"
  mkfs.ext4 -q -F -L lxclab-root -d "$root" "$dir/disk.raw"
}

rm -rf "$root"
cp -a "$base" "$root"
clone_checkout
run_setup
make_disk
rm -rf "$root"
