#!/usr/bin/env bash
# Prove the kit on a stock Debian VM, or make a workshop VM image (behind `./kit vm-test` / `./kit vm-image`).
#   vm.sh test  [bookworm|trixie] [-- pytest args]   boot, run the README's two commands, bring back log + summary
#   vm.sh image [bookworm|trixie]                    a bootable workshop image: kit seeded, JupyterLab at boot
#   vm.sh build [bookworm|trixie]                    only build (or find cached) the image vm-test boots
#   vm.sh plan  test|image [release] [-- args]        print the cache keys, paths and QEMU command; build nothing
# Images are cached under $LXCLAB_VM_CACHE (default _build/vm); see the README, "Testing in a VM".
set -euo pipefail
VM_CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$VM_CHECKOUT/scripts/vm/lib.sh"
source "$VM_CHECKOUT/scripts/debs.sh"

usage() {
  sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# Sets MODE, RELEASE and PYTEST_ARGS from the command line; a bad word is a usage error.
parse_args() {
  MODE="${1:-}"; shift || true
  PLAN=0
  if [[ "$MODE" == plan ]]; then PLAN=1; MODE="${1:-}"; shift || true; fi
  [[ "$MODE" == test || "$MODE" == image || "$MODE" == build ]] || { vm_say "unknown command '${MODE}'"; usage; }
  RELEASE=bookworm
  PYTEST_ARGS=()
  if (($#)) && [[ "$1" != -- ]]; then RELEASE="$1"; shift; fi
  vm_known_release "$RELEASE" || { vm_say "unknown release '$RELEASE' (known: ${VM_RELEASES[*]})"; usage; }
  if (($#)); then
    [[ "$1" == -- ]] || { vm_say "unexpected '$1': pytest arguments go after --"; usage; }
    shift
    [[ "$MODE" == test ]] || { vm_say "vm-$MODE takes no pytest arguments"; usage; }
    PYTEST_ARGS=("$@")
  fi
  return 0
}

# Install what building and booting need, from Debian, when it is missing.
ensure_tools() {
  local need=() pair
  for pair in qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils debootstrap:debootstrap \
              mkfs.ext4:e2fsprogs git:git sfdisk:fdisk curl:curl; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
  done
  ((${#need[@]})) || return 0
  install_debs vm "${need[@]}"
}

# Build into DIR.tmp with a stage script, then rename: a failed build leaves nothing behind.
build_stage() {
  local what="$1" dir="$2"; shift 2
  local t0; t0=$(vm_now)
  vm_say "building the $what stage in $dir (log: $dir.log)"
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  if ! "$@" "$dir.tmp" >"$dir.log" 2>&1; then
    tail -20 "$dir.log" >&2
    rm -rf "$dir.tmp"
    vm_die "building the $what stage failed; the log is $dir.log"
  fi
  mv "$dir.tmp" "$dir"
  vm_say "built the $what stage in $(vm_took $(($(vm_now) - t0)))"
}

# The kit image for RELEASE at COMMIT, built (base stage first) unless cached; prints its directory.
ensure_image() {
  local release="$1" commit="$2" base kit
  base="$(vm_base_dir "$release")" kit="$(vm_kit_dir "$release" "$commit")"
  mkdir -p "$(dirname "$base")"
  exec 8>"$(dirname "$base")/build.lock"
  flock 8
  [[ -d "$base" ]] || build_stage base "$base" "$VM_CHECKOUT/scripts/vm/base.sh" "$release"
  [[ -d "$kit" ]] || build_stage kit "$kit" run_kit_layer "$base/rootfs" "$commit"
  flock -u 8
  printf '%s\n' "$kit"
}

run_kit_layer() { "$VM_CHECKOUT/scripts/vm/kit-layer.sh" "$1" "$3" "$2"; }

# The QEMU command line for a disk, kernel directory and optional 9p share (into the array QEMU).
qemu_command() {
  local kit="$1" disk="$2" share="${3:-}"
  QEMU=(qemu-system-x86_64 -machine q35 -smp 2 -m "${LXCLAB_VM_MEMORY:-8G}" -no-reboot
        -display none -monitor none -serial stdio -nic none
        -kernel "$kit/vmlinuz" -initrd "$kit/initrd.img"
        -append "root=LABEL=lxclab-root rw console=ttyS0,115200 quiet loglevel=3"
        -drive "file=$disk,if=virtio,format=qcow2,cache=unsafe,discard=unmap")
  vm_accel_args
  QEMU+=("${VM_ACCEL_ARGS[@]}")
  [[ -z "$share" ]] || QEMU+=(-virtfs "local,path=$share,mount_tag=lxclab,security_model=none,id=host0")
}

# Boot a throw-away overlay of the kit image with the test job shared; print its summary; exit with its status.
run_test() {
  local commit kit run t0 status
  commit="$(git -C "$VM_CHECKOUT" rev-parse HEAD)"
  git -C "$VM_CHECKOUT" diff --quiet HEAD 2>/dev/null || vm_say "uncommitted changes are not tested: the VM runs commit ${commit:0:12}"
  kit="$(ensure_image "$RELEASE" "$commit")"
  run="$(vm_cache)/runs/$RELEASE-$(date -u +%Y%m%dT%H%M%SZ)-$$"
  mkdir -p "$run/share/out"
  vm_share_checkout "$run/share" "$commit"
  cp "$VM_CHECKOUT/scripts/vm/guest.sh" "$run/share/guest.sh"
  ((${#PYTEST_ARGS[@]} == 0)) || printf '%s\0' "${PYTEST_ARGS[@]}" >"$run/share/args"
  qemu-img create -q -f qcow2 -b "$kit/disk.raw" -F raw "$run/disk.qcow2"
  qemu_command "$kit" "$run/disk.qcow2" "$run/share"
  vm_say "booting $RELEASE (${LXCLAB_VM_ACCEL:-tcg}); console log: $run/console.log"
  t0=$(vm_now)
  vm_start "$run/qemu.pid" "$run/console.log" "${LXCLAB_VM_TIMEOUT:-14400}" "${QEMU[@]}"
  watch_boot "$run" & local watchdog=$!
  # shellcheck disable=SC2064  # the values now: the trap may run after run_test's locals are gone
  trap "kill $watchdog 2>/dev/null; rm -f $(printf '%q ' "$run/disk.qcow2" "$run/share/checkout.bundle")" EXIT
  vm_wait
  report "$run" "$(($(vm_now) - t0))"
}

# Stop the VM whose job has not started within $LXCLAB_VM_BOOT_TIMEOUT seconds (a boot that hangs).
watch_boot() {
  local run="$1" deadline=$(($(vm_now) + ${LXCLAB_VM_BOOT_TIMEOUT:-1200}))
  while (($(vm_now) < deadline)); do
    [[ -f "$run/share/out/booted" ]] && return 0
    sleep 5
  done
  vm_say "the VM did not start its job within ${LXCLAB_VM_BOOT_TIMEOUT:-1200} s; stopping it"
  [[ -f "$run/qemu.pid" ]] && kill "$(cat "$run/qemu.pid")"
}

# Print the summary the guest left (or say that it left none) and exit with the test's status.
report() {
  local run="$1" took="$2" status
  echo
  if [[ ! -f "$run/share/out/status" ]]; then
    vm_say "the VM left no result after $(vm_took "$took"); see $run/console.log"
    exit 1
  fi
  status="$(cat "$run/share/out/status")"
  echo "=== vm-test $RELEASE: $(grep '^results=' "$run/share/out/summary" | cut -d= -f2-)"
  sed 's/^/    /' "$run/share/out/summary"
  echo "    vm_total=$(vm_took "$took") logs=$run/share/out/"
  exit "$status"
}

plan() {
  local commit; commit="$(git -C "$VM_CHECKOUT" rev-parse HEAD)"
  local kit; kit="$(vm_kit_dir "$RELEASE" "$commit")"
  echo "mode=$MODE"
  echo "release=$RELEASE"
  echo "cache=$(vm_cache)"
  echo "base=$(vm_base_dir "$RELEASE")"
  echo "base_packages=${VM_BASE_PACKAGES[*]}"
  echo "kit=$kit"
  printf 'pytest_args='; ((${#PYTEST_ARGS[@]} == 0)) || printf '%q ' "${PYTEST_ARGS[@]}"; echo
  qemu_command "$kit" "$kit/run.qcow2" "$(vm_cache)/runs/share"
  printf 'qemu='; printf '%q ' "${QEMU[@]}"; echo
}

parse_args "$@"
if ((PLAN)); then plan; exit 0; fi
[[ $EUID == 0 ]] || vm_die "building a VM image needs root (debootstrap, chroot)"
ensure_tools
case "$MODE" in
  test) run_test ;;
  build) ensure_image "$RELEASE" "$(git -C "$VM_CHECKOUT" rev-parse HEAD)" ;;
  image) commit="$(git -C "$VM_CHECKOUT" rev-parse HEAD)"
    "$VM_CHECKOUT/scripts/vm/image.sh" "$RELEASE" "$(ensure_image "$RELEASE" "$commit")" "$commit" ;;
esac
