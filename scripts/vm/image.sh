#!/usr/bin/env bash
# Make the workshop VM image: `image.sh RELEASE KIT_DIR COMMIT` leaves $cache/<release>/workshop-<key>/ holding
# lxclab-workshop-<release>.qcow2 (BIOS-bootable, GRUB, kit installed and seeded, JupyterLab at boot)
# and run-workshop.sh, which boots it with JupyterLab forwarded to the host's 127.0.0.1 only.
# The kit image is copied onto a partitioned disk, booted once to install GRUB and the unit, compressed,
# then booted from its own bootloader until JupyterLab answers through the port forward.
set -euo pipefail
VM_CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$VM_CHECKOUT/scripts/vm/lib.sh"
release="${1:?usage: image.sh RELEASE KIT_DIR COMMIT}" kit="${2:?usage: image.sh RELEASE KIT_DIR COMMIT}"
commit="${3:?usage: image.sh RELEASE KIT_DIR COMMIT}"
key="$({ basename "$kit"; echo "$commit"; cat "$VM_CHECKOUT/scripts/vm/image.sh" "$VM_CHECKOUT/scripts/vm/image-guest.sh"; } | sha256sum | cut -c1-12)"
dir="$(vm_cache)/$release/workshop-$key"
name="lxclab-workshop-$release"
vm_accel_args
accel_args="${VM_ACCEL_ARGS[*]}"

# A disk with one bootable partition at 1 MiB holding the kit's ext4 filesystem.
partitioned_disk() {
  local disk="$1" size
  size=$(stat -c %s "$kit/disk.raw")
  truncate -s $((size + 2 * 1024 * 1024)) "$disk"
  printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$disk"
  e2image -ra -O $((1024 * 1024)) "$kit/disk.raw" "$disk"  # only the blocks in use
}

# Boot the disk from the kit's kernel with image-guest.sh shared as the job; fail unless it says 0.
configure_in_vm() {
  local disk="$1" share="$dir.tmp/share"
  mkdir -p "$share/out"
  vm_share_checkout "$share" "$commit"
  cp "$VM_CHECKOUT/scripts/vm/image-guest.sh" "$share/guest.sh"
  # shellcheck disable=SC2086
  vm_start "$dir.tmp/configure.pid" "$dir.tmp/configure.log" 5400 \
    qemu-system-x86_64 -machine q35 -smp 2 -m 4G -no-reboot -display none -monitor none \
    -serial stdio -nic none $accel_args -kernel "$kit/vmlinuz" -initrd "$kit/initrd.img" \
    -append "root=LABEL=lxclab-root rw console=ttyS0,115200 quiet loglevel=3" \
    -drive "file=$disk,if=virtio,format=raw,cache=unsafe,discard=unmap" \
    -virtfs "local,path=$share,mount_tag=lxclab,security_model=none,id=host0" >/dev/null
  vm_wait
  [[ "$(cat "$share/out/status" 2>/dev/null)" == 0 ]] || { tail -30 "$dir.tmp/configure.log" >&2; return 1; }
}

write_runner() {
  cat >"$dir.tmp/run-workshop.sh" <<EOF
#!/bin/sh
# Boot the lxclab workshop VM ($release). JupyterLab answers on http://127.0.0.1:\${PORT:-8888}/ once the
# console below prints its URL (copy the token from it). Console login: root / lxclab. Quit: Ctrl-A X.
# Nothing but this machine's 127.0.0.1 can reach the VM; the VM has no route out.
here="\$(cd "\$(dirname "\$0")" && pwd)"
exec qemu-system-x86_64 -machine q35 -smp 2 -m \${MEMORY:-4G} \${ACCEL:--accel kvm -accel tcg,thread=multi -cpu max} \\
  -drive file="\$here/$name.qcow2",if=virtio,format=qcow2 -nographic \\
  -nic user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:\${PORT:-8888}-:8888 "\$@"
EOF
  chmod 755 "$dir.tmp/run-workshop.sh"
}

# Boot the finished image from GRUB (a throw-away snapshot) until JupyterLab answers through the forward.
prove_image() {
  local port answered=1 t0
  t0=$(vm_now)
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  PORT=$port ACCEL="$accel_args" MEMORY=4G \
    vm_start "$dir.tmp/first-boot.pid" "$dir.tmp/first-boot.log" 2700 "$dir.tmp/run-workshop.sh" -snapshot >/dev/null
  while vm_running; do
    if curl -s --noproxy '*' -o /dev/null -m 5 "http://127.0.0.1:$port/api/status"; then answered=0; break; fi
    sleep 5
  done
  vm_stop
  ((answered == 0)) || { tail -30 "$dir.tmp/first-boot.log" >&2; return 1; }
  vm_say "the image booted from GRUB and JupyterLab answered on 127.0.0.1:$port in $(vm_took $(($(vm_now) - t0)))"
}

if [[ -f "$dir/$name.qcow2" ]]; then
  vm_say "workshop image (cached): $dir/$name.qcow2"
else
  t0=$(vm_now)
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  vm_say "making the workshop image in $dir"
  partitioned_disk "$dir.tmp/disk.raw"
  configure_in_vm "$dir.tmp/disk.raw" || vm_die "configuring the workshop image failed; see $dir.tmp/configure.log"
  qemu-img convert -c -O qcow2 "$dir.tmp/disk.raw" "$dir.tmp/$name.qcow2"
  rm -rf "$dir.tmp/disk.raw" "$dir.tmp/share"
  write_runner
  prove_image || vm_die "the workshop image did not serve JupyterLab; see $dir.tmp/first-boot.log"
  mv "$dir.tmp" "$dir"
  vm_say "made the workshop image in $(vm_took $(($(vm_now) - t0)))"
fi
echo "$dir/$name.qcow2 ($(du -h "$dir/$name.qcow2" | cut -f1)); boot it with $dir/run-workshop.sh"
