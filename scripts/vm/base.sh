#!/usr/bin/env bash
# Build the base stage of a stock Debian VM: `base.sh RELEASE DIR` leaves DIR/rootfs, ready to boot.
# debootstrap's standard set, Debian's kernel, systemd as init (cgroup v2, its default), AppArmor,
# apt sources with updates and security, root logged in on the serial console (ttyS0).
set -euo pipefail
VM_CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$VM_CHECKOUT/scripts/vm/lib.sh"
release="${1:?usage: base.sh RELEASE DIR}" dir="${2:?usage: base.sh RELEASE DIR}"
root="$dir/rootfs"
trap 'vm_chroot_umount' EXIT

write_config() {
  cat >"$root/etc/apt/sources.list" <<EOF
deb $VM_MIRROR $release main
deb $VM_MIRROR $release-updates main
deb $VM_SECURITY_MIRROR $release-security main
EOF
  printf 'LABEL=lxclab-root / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
  echo lxclab-vm >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 lxclab-vm\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
  echo 'LANG=C.UTF-8' >"$root/etc/default/locale"
  install -m 0644 "$VM_CHECKOUT/scripts/vm/bash_profile" "$root/root/.bash_profile"
  mkdir -p "$root/mnt/host"
}

# root logged in on ttyS0 by agetty, like serial-getty@ttyS0 but without waiting for udev's ttyS0
# device unit: under TCG on a loaded host udev can take longer than its 90 s, and the getty then never starts.
write_console_unit() {
  cat >"$root/etc/systemd/system/lxclab-console.service" <<'EOF'
[Unit]
Description=root's login on the serial console ttyS0 (lxclab VM)
After=systemd-user-sessions.service
Before=getty.target

[Service]
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,57600,38400,9600 ttyS0 vt220
Type=idle
Restart=always
UtmpIdentifier=ttyS0
TTYPath=/dev/ttyS0
TTYReset=yes
TTYVHangup=yes
KillMode=process
IgnoreSIGPIPE=no
SendSIGHUP=yes

[Install]
WantedBy=getty.target
EOF
  mkdir -p "$root/etc/systemd/system/getty.target.wants"
  ln -sf /etc/systemd/system/lxclab-console.service "$root/etc/systemd/system/getty.target.wants/"
  ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
  # login gives up after LOGIN_TIMEOUT (60 s), which a loaded TCG host can take to open the session.
  sed -i '/^LOGIN_TIMEOUT/d' "$root/etc/login.defs"
  echo 'LOGIN_TIMEOUT 0' >>"$root/etc/login.defs"
}

install_packages() {
  vm_chroot_share_network "$root"
  vm_chroot_mount "$root"
  vm_chroot "$root" apt-get update -qq
  vm_chroot "$root" apt-get -y -qq dist-upgrade
  vm_chroot "$root" apt-get -y -qq install "${VM_BASE_PACKAGES[@]}"
  vm_chroot "$root" apt-get clean
  vm_chroot_umount
  vm_chroot_unshare_network "$root"
}

[[ -d "$root" ]] || debootstrap "$release" "$root" "$VM_MIRROR"
write_config
install_packages
write_console_unit
ls "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-* >/dev/null || vm_die "no kernel or initrd in $root/boot"
