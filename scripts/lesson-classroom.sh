#!/usr/bin/env bash
# The classroom that the lessons run against (for nbval, `make notebooks`, the slides), in a network
# namespace of this checkout's own: inside it the lessons keep the addresses they teach
# (127.0.0.1:5000 and :5001), and nothing on the host is in the way: not a classroom that
# `./kit classroom` left running, not Debian's registry service, not another checkout's test run.
#   up         start it, seeded (a fresh private LXCLAB_HOME under _build/; the package cache survives)
#   exec CMD   run CMD inside its network namespace (only the network: mounts and cgroups are the host's)
#   down       stop it and remove its network namespace
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LXCLAB_VENV:-$here/.venv}"
export LXCLAB_HOME="${LXCLAB_LESSON_HOME:-$here/_build/lesson-home}"
lxclab="$venv/bin/lxclab"
# One namespace per checkout, named after its path, so that two checkouts never share one.
netns="lxclab-lessons-$(printf %s "$here" | sha256sum | cut -c1-10)"

inside() { nsenter --net="/run/netns/$netns" -- "$@"; }

down() {
  [[ -e "/run/netns/$netns" ]] || return 0
  inside "$lxclab" registry down
  ip netns delete "$netns"
}

case "${1:-}" in
  up)
    down >/dev/null 2>&1 || true
    mkdir -p "$LXCLAB_HOME"
    find "$LXCLAB_HOME" -mindepth 1 -maxdepth 1 ! -name cache -exec rm -rf {} +
    "$lxclab" seed --no-push >/dev/null  # on the host's network: fetches the Debian packages once, into the cache
    ip netns add "$netns"
    ip -n "$netns" link set lo up
    inside "$lxclab" registry up
    inside "$lxclab" seed ;;
  exec)
    shift
    inside "$@" ;;
  down)
    down ;;
  *)
    echo "usage: $0 up | exec CMD... | down" >&2; exit 2 ;;
esac
