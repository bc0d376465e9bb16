#!/usr/bin/env bash
# Runs once inside the VM (shared over 9p by image.sh, as guest.sh) to turn the kit image into the
# workshop image: GRUB on the disk, DHCP for the port forward, `./kit classroom` as a unit that starts
# at boot with JupyterLab on port 8888, started once here to prove it and to seed the registry.
set -uo pipefail
out=/mnt/host/out
mkdir -p "$out"
exec > >(tee "$out/image.log") 2>&1
say() { printf 'vm-image: %s\n' "$*"; }
fail() { say "error: $*"; echo 1 >"$out/status"; sync; exit 1; }

# no_timer_check: under TCG on a busy host the kernel panicked at boot, "IO-APIC + timer doesn't work!"
install_grub() {
  sed -i -e 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=2/' \
    -e 's/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT="console=tty0 console=ttyS0,115200 no_timer_check"/' /etc/default/grub
  printf 'GRUB_TERMINAL="console serial"\nGRUB_SERIAL_COMMAND="serial --speed=115200"\n' >>/etc/default/grub
  grub-install --target=i386-pc /dev/vda && update-grub
}

enable_network() {
  printf '[Match]\nName=en*\n\n[Network]\nDHCP=yes\n' >/etc/systemd/network/20-lxclab.network
  systemctl enable systemd-networkd
}

# The unit: the README's `./kit classroom`, JupyterLab on every address of the VM (the host forwards
# only its own 127.0.0.1 to it); its output, with the URL and token, goes to the console too.
install_unit() {
  cat >/etc/systemd/system/lxclab-classroom.service <<'EOF'
[Unit]
Description=lxclab classroom: registry, seed images and JupyterLab on port 8888
After=network-online.target
Wants=network-online.target

[Service]
WorkingDirectory=/root/lxclab
Environment=HOME=/root
ExecStart=/root/lxclab/kit classroom --ip=0.0.0.0 --port=8888
StandardOutput=journal+console
StandardError=journal+console
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
EOF
  # Debian's docker-registry package starts its own registry on 127.0.0.1:5000, the classroom's port:
  # this appliance runs only the classroom's.
  systemctl disable --now docker-registry.service 2>/dev/null || true
  systemctl enable lxclab-classroom.service
}

# Start the unit once and wait for JupyterLab to answer: the registry is up and seeded by then.
# Under TCG on a loaded host a start can take minutes, and the unit restarts after a failed one.
prove_unit() {
  local deadline=$(($(date +%s) + 2700))
  systemctl start lxclab-classroom.service
  until curl -s -o /dev/null -m 5 http://127.0.0.1:8888/api/status; do
    (($(date +%s) < deadline)) || return 1
    sleep 3
  done
  /root/lxclab/.venv/bin/lxclab images || true
  systemctl stop lxclab-classroom.service
}

source /mnt/host/checkout.sh

say "building the workshop image on $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r)"
checkout /mnt/host || fail "could not check out $(cat /mnt/host/commit)"
install_grub || fail "grub-install or update-grub failed"
enable_network || fail "cannot enable systemd-networkd"
install_unit || fail "cannot install lxclab-classroom.service"
prove_unit || { journalctl -u lxclab-classroom.service --no-pager | tail -30; fail "JupyterLab did not answer on port 8888"; }
echo 'root:lxclab' | chpasswd
fstrim -v / || true
say "done"
echo 0 >"$out/status"
sync
