#!/usr/bin/env bash
# Bring up the classroom that the lessons run against (for nbval and `make notebooks`), or stop it.
# A private LXCLAB_HOME under _build/ keeps it apart from a user's own; the package cache survives.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LXCLAB_VENV:-$here/.venv}"
export LXCLAB_HOME="${LXCLAB_LESSON_HOME:-$here/_build/lesson-home}"
lxclab="$venv/bin/lxclab"

case "${1:-}" in
  up)
    "$lxclab" registry down >/dev/null 2>&1 || true
    mkdir -p "$LXCLAB_HOME"
    find "$LXCLAB_HOME" -mindepth 1 -maxdepth 1 ! -name cache -exec rm -rf {} +
    "$lxclab" registry up
    "$lxclab" seed ;;
  down)
    "$lxclab" registry down ;;
  *)
    echo "usage: $0 up|down" >&2; exit 2 ;;
esac
