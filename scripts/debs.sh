# Sourced by scripts/setup.sh and scripts/vm/vm.sh: install Debian packages that are missing.
# apt-get fails at once when another apt holds its locks (two `./kit vm-test` side by side, or
# setup beside one): this kit's own apt runs queue on a lock of their own, and wait for dpkg's.

# Install those of the Debian packages named that are missing; PREFIX names who asks, in the message.
install_debs() {
  local prefix="$1" lock=/run/lock/lxclab-apt.lock missing=() p
  shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "$prefix: installing Debian packages: ${missing[*]}" >&2
  mkdir -p "${lock%/*}"  # a fresh chroot may have no /run/lock
  (
    flock -w 1800 9 || { echo "$prefix: another apt run of lxclab held $lock for 30 min" >&2; exit 1; }
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  ) 9>"$lock"
}
