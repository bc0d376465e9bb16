#!/usr/bin/env bash
# Install everything lxclab needs on a fresh Debian 12 or 13 machine, as root; quick when already done.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LXCLAB_VENV:-$here/.venv}"

# Debian packages: the real components (registry, oracles, LXC, a browser for widget tests).
# rsync: LXC copies a container's rootfs with it to snapshot it; e2fsprogs: chattr, in the hostile-layer tests;
# qemu-system-x86: the VM scripts' tests stop a real QEMU (and a VM built by ./kit vm-test has no network to fetch it).
debs=(python3 python3-venv python3-dev docker-registry busybox-static skopeo umoci crun lxc lxc-dev pkg-config gcc
      zstd iproute2 util-linux uidmap chromium rsync e2fsprogs qemu-system-x86)
# Node.js and npm come with this kind of machine; Debian's npm conflicts with them.
command -v npm >/dev/null || debs+=(nodejs npm)

source "$here/scripts/debs.sh"
install_debs setup "${debs[@]}"

# PyPI's python-lxc (3.0.4.0) aborts on attach under Python 3.13 and later (it calls PyOS_AfterFork,
# lxc/python3-lxc#35); there Debian's python3-lxc, which carries the fix (Debian 13), is linked into the venv.
debian_lxc=$(/usr/bin/python3 -c 'import sys; print(int(sys.version_info >= (3, 13)))')
((debian_lxc == 0)) || install_debs setup python3-lxc

# Debian's docker-registry package starts its own registry service on 127.0.0.1:5000, the classroom's
# port. On this checkout's first setup, where systemd runs, stop and disable it, and say so once.
registry_service_stamp="$venv/.lxclab-registry-service-checked"
if [[ ! -f "$registry_service_stamp" && -d /run/systemd/system ]] && command -v systemctl >/dev/null &&
   { systemctl is-active --quiet docker-registry || systemctl is-enabled --quiet docker-registry; } 2>/dev/null; then
  systemctl disable --now --quiet docker-registry
  echo "setup: stopped and disabled Debian's docker-registry service, which holds port 5000 that the classroom" \
       "uses (to get it back: systemctl enable --now docker-registry)"
fi

# `lxclab run --userns` maps a container's root to a range of host ids owned by a user of its own, as Docker's
# userns-remap does with dockremap: a system user with 65536 subordinate uids and gids, after any range in use.
remap_user=lxclab-remap
if ! id -u "$remap_user" >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$remap_user"
fi
if ! grep -q "^$remap_user:" /etc/subuid 2>/dev/null || ! grep -q "^$remap_user:" /etc/subgid 2>/dev/null; then
  start=$(cat /etc/subuid /etc/subgid 2>/dev/null | awk -F: 'BEGIN {end = 100000}
    NF == 3 && $2 + $3 > end {end = $2 + $3} END {print end}')
  usermod --add-subuids "$start-$((start + 65535))" --add-subgids "$start-$((start + 65535))" "$remap_user"
  echo "setup: user $remap_user owns host ids $start-$((start + 65535)) for lxclab run --userns"
fi

# The Python environment: the package, editable, with its test extras.
stamp="$venv/.lxclab-installed"
# Debian's own Python, so that every user (the lessons' non-root run as nobody) can execute it.
if [[ ! -x "$venv/bin/python" ]]; then
  /usr/bin/python3 -m venv "$venv"
fi
if [[ ! -f "$stamp" || "$here/pyproject.toml" -nt "$stamp" ]]; then
  echo "setup: installing the Python environment in $venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e "$here[test]"
  touch "$stamp"
fi
if ((debian_lxc)); then
  site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("platlib"))')"
  [[ -L "$site/lxc" ]] || "$venv/bin/pip" uninstall -q -y lxc 2>/dev/null || true  # PyPI's, from an older setup
  ln -sfn /usr/lib/python3/dist-packages/lxc /usr/lib/python3/dist-packages/_lxc.cpython-3*.so "$site/"
fi
touch "$registry_service_stamp"

# npm assets for offline widgets and slides (served locally, never from a CDN).
if [[ -f "$here/package.json" && ( ! -d "$here/node_modules" || "$here/package.json" -nt "$here/node_modules" ) ]]; then
  echo "setup: installing npm assets"
  (cd "$here" && npm install --silent --no-audit --no-fund >/dev/null)
  touch "$here/node_modules"
fi
