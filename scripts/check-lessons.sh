#!/usr/bin/env bash
# Strict nbval on some lessons (default: all) against a fresh lesson classroom in this checkout's
# own network namespace (scripts/lesson-classroom.sh), so it runs beside any other classroom.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LXCLAB_VENV:-$here/.venv}"
export IPYTHONDIR="$here/tests/ipython"
export LXCLAB_HOME="${LXCLAB_LESSON_HOME:-$here/_build/lesson-home}"
"$here/scripts/lesson-classroom.sh" up >/dev/null
trap '"$here/scripts/lesson-classroom.sh" down >/dev/null' EXIT
cd "$here"
# Options alone (like -n 2) still check every lesson: add notebooks/ when no path was given.
for argument in "$@"; do [[ -e "$argument" ]] && given=1; done
[[ -n "${given:-}" ]] || set -- "$@" notebooks
"$here/scripts/lesson-classroom.sh" exec "$venv/bin/python" -m pytest -p no:cacheprovider --nbval \
  --nbval-sanitize-with tests/sanitize.cfg "$@"
