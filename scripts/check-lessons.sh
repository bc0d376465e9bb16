#!/usr/bin/env bash
# Strict nbval on some lessons (default: all) against a fresh lesson classroom, one run at a time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LXCLAB_VENV:-$here/.venv}"
exec 9>/run/lock/lxclab-lesson-classroom.lock  # the lesson classroom's ports are machine-wide
flock 9
export IPYTHONDIR="$here/tests/ipython"
export LXCLAB_HOME="${LXCLAB_LESSON_HOME:-$here/_build/lesson-home}"
"$here/scripts/lesson-classroom.sh" up >/dev/null
trap '"$here/scripts/lesson-classroom.sh" down >/dev/null' EXIT
cd "$here"
"$venv/bin/python" -m pytest -p no:cacheprovider --nbval --nbval-sanitize-with tests/sanitize.cfg "${@:-notebooks}"
