# Shared by scripts/vm/*.sh (sourced): the cache layout, image keys, chroot mounts, logging.
# A stock Debian VM is built in two cached stages, both in a chroot on the host at native speed:
#   base: debootstrap + kernel + systemd + AppArmor + a serial console     ($cache/<release>/base-<key>/rootfs)
#   kit:  the checkout cloned into /root/lxclab, `./kit setup` run there,
#         the seed's Debian packages fetched, then an ext4 disk image        ($cache/<release>/kit-<key>/)
# Each run boots a throw-away qcow2 overlay on top of the kit image.

VM_RELEASES=(bookworm trixie)
VM_MIRROR="${LXCLAB_VM_MIRROR:-http://deb.debian.org/debian}"
VM_SECURITY_MIRROR="${LXCLAB_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
VM_DISK_SIZE="${LXCLAB_VM_DISK_SIZE:-24G}"
# Packages beyond debootstrap's default set: what a stock server install boots with.
VM_BASE_PACKAGES=(linux-image-amd64 initramfs-tools grub-pc systemd-sysv dbus apparmor ca-certificates git locales
                  openssh-client curl)
# The files of the checkout whose content decides what `./kit setup` installs into the image.
VM_KIT_INPUTS=(scripts/setup.sh pyproject.toml package.json package-lock.json)

vm_say() { printf 'vm: %s\n' "$*" >&2; }
vm_die() { printf 'vm: error: %s\n' "$*" >&2; exit 1; }

# Put what a guest job needs to bring /root/lxclab to `commit` into the 9p share `dir`: checkout.sh, a bundle, the commit.
vm_share_checkout() {
  local dir="$1" commit="$2"
  git -C "$VM_CHECKOUT" bundle create -q "$dir/checkout.bundle" HEAD
  echo "$commit" >"$dir/commit"
  cp "$VM_CHECKOUT/scripts/vm/checkout.sh" "$dir/checkout.sh"
}

# QEMU's accelerator and CPU model, into the array VM_ACCEL_ARGS: KVM with the host's CPU, or TCG with
# $LXCLAB_VM_CPU. TCG's default is Nehalem (x86-64-v2, no AVX), not `max`: with `max` (QEMU 7.2 emulates AVX2)
# Chromium in the guest gave no screenshot of the slide deck on either release, three tries out of three;
# with Nehalem it did.
vm_accel_args() {
  case "${LXCLAB_VM_ACCEL:-tcg}" in
    tcg) VM_ACCEL_ARGS=(-accel tcg,thread=multi -cpu "${LXCLAB_VM_CPU:-Nehalem}") ;;
    kvm) VM_ACCEL_ARGS=(-accel kvm -cpu host,-arch-capabilities) ;;
    *) vm_die "LXCLAB_VM_ACCEL must be tcg or kvm, not '$LXCLAB_VM_ACCEL'" ;;
  esac
}

# The cache directory: $LXCLAB_VM_CACHE, else _build/vm in the checkout.
vm_cache() { printf '%s\n' "${LXCLAB_VM_CACHE:-$VM_CHECKOUT/_build/vm}"; }

# Succeeds when $1 names a supported release.
vm_known_release() {
  local r
  for r in "${VM_RELEASES[@]}"; do [[ "$1" == "$r" ]] && return 0; done
  return 1
}

# The base stage's key: the release and every line of the recipe that builds it.
vm_base_key() {
  local release="$1"
  { echo "$release $VM_MIRROR ${VM_BASE_PACKAGES[*]}"; cat "$VM_CHECKOUT/scripts/vm/base.sh" "$VM_CHECKOUT/scripts/vm/bash_profile"; } \
    | sha256sum | cut -c1-12
}

# The kit stage's key: the base key plus the committed content of the files `./kit setup` reads.
vm_kit_key() {
  local release="$1" commit="$2" f
  { vm_base_key "$release"; cat "$VM_CHECKOUT/scripts/vm/kit-layer.sh"
    for f in "${VM_KIT_INPUTS[@]}"; do
      echo "== $f"; git -C "$VM_CHECKOUT" show "$commit:$f" 2>/dev/null || true
    done; } | sha256sum | cut -c1-12
}

vm_base_dir() { printf '%s/%s/base-%s\n' "$(vm_cache)" "$1" "$(vm_base_key "$1")"; }
vm_kit_dir() { printf '%s/%s/kit-%s\n' "$(vm_cache)" "$1" "$(vm_kit_key "$1" "$2")"; }

# Mount what a chroot needs (proc, sys, dev, dev/pts) under $1; vm_chroot_umount undoes it.
VM_MOUNTS=()
vm_chroot_mount() {
  local root="$1"
  mount -t proc proc "$root/proc" && VM_MOUNTS+=("$root/proc")
  mount -t sysfs sysfs "$root/sys" && VM_MOUNTS+=("$root/sys")
  mount --bind /dev "$root/dev" && VM_MOUNTS+=("$root/dev")
  mount --bind /dev/pts "$root/dev/pts" && VM_MOUNTS+=("$root/dev/pts")
}

# Unmount, newest first, everything vm_chroot_mount mounted (safe to call twice).
vm_chroot_umount() {
  local i
  for ((i = ${#VM_MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${VM_MOUNTS[i]}" 2>/dev/null || umount -l "${VM_MOUNTS[i]}" || vm_say "could not unmount ${VM_MOUNTS[i]}"
  done
  VM_MOUNTS=()
}

# Run a command in the chroot $1 with a clean environment (extra VAR=value words may precede it).
vm_chroot() {
  local root="$1"; shift
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# Let the chroot reach the package registries the host reaches: its resolver, hosts and CA bundle.
# (Removed again by vm_chroot_unshare_network; the image keeps Debian's own.)
vm_chroot_share_network() {
  local root="$1"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  cp "$root/etc/hosts" "$root/etc/hosts.vm-stock" && cp /etc/hosts "$root/etc/hosts"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/vm-host-ca.crt"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
}

vm_chroot_unshare_network() {
  local root="$1"
  rm -f "$root/etc/vm-host-ca.crt" "$root/usr/sbin/policy-rc.d"
  [[ -f "$root/etc/hosts.vm-stock" ]] && mv "$root/etc/hosts.vm-stock" "$root/etc/hosts"
  : >"$root/etc/resolv.conf"
}

# Environment words that point pip, npm and node at the host's CA bundle inside the chroot.
VM_CA_ENV=(PIP_CERT=/etc/vm-host-ca.crt NODE_EXTRA_CA_CERTS=/etc/vm-host-ca.crt npm_config_cafile=/etc/vm-host-ca.crt
           SSL_CERT_FILE=/etc/vm-host-ca.crt REQUESTS_CA_BUNDLE=/etc/vm-host-ca.crt)

# Start QEMU in the background for at most LIMIT seconds: `vm_start PIDFILE LOG LIMIT QEMU-WORDS...`.
# Its serial console goes, without CRs, to LOG and to stdout. Until vm_wait returns, Ctrl-C or TERM stops the VM
# as well as the script: under `timeout` QEMU has a process group of its own, which a terminal's Ctrl-C never
# reaches, so a script that only waited in the foreground would hang there with the VM still running.
vm_start() {
  local pidfile="$1" log="$2" limit="$3"; shift 3
  rm -f "$pidfile"
  timeout "$limit" "$@" -pidfile "$pidfile" </dev/null 2>&1 | sed -u 's/\r$//' | tee "$log" &
  # The job's first process, `timeout`, lives as long as the VM; the signal that stops the script kills sed and tee.
  VM_JOB=$! VM_TIMEOUT=$(jobs -p %+) VM_PIDFILE="$pidfile"
  trap 'vm_stop; exit 130' INT
  trap 'vm_stop; exit 143' TERM
}

# Whether the VM that vm_start started is still running.
vm_running() { kill -0 "$VM_TIMEOUT" 2>/dev/null; }

# Wait until the VM that vm_start started powers off or runs out of time.
vm_wait() {
  wait "$VM_JOB" || true
  trap - INT TERM
}

# Stop the VM that vm_start started, by its QEMU's PID, and wait until its console is written out.
vm_stop() {
  local tries
  for ((tries = 0; tries < 100; tries++)); do  # QEMU writes its pidfile a moment after it starts
    vm_running || break
    if [[ -s "$VM_PIDFILE" ]]; then
      kill "$(cat "$VM_PIDFILE")" 2>/dev/null && vm_say "stopped the VM"
      break
    fi
    sleep 0.1
  done
  vm_wait
}

# Seconds since the epoch, and a duration in seconds as "12m34s".
vm_now() { date +%s; }
vm_took() { local s=$(($1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
