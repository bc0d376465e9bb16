#!/usr/bin/env bash
# Run the whole suite: library tests, then every lesson notebook under strict nbval.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LXCLAB_VENV:-$here/.venv}"
export PATH="$venv/bin:$PATH"
export IPYTHONDIR="$here/tests/ipython"
cd "$here"
if (($#)); then
  exec python -m pytest "$@"
fi
python -m pytest -n 2 --dist loadfile tests

# The lessons run against their own classroom registry, seeded with the deterministic images,
# on fixed ports: one lesson classroom at a time on this machine.
exec 9>/run/lock/lxclab-lesson-classroom.lock
flock 9
"$here/scripts/lesson-classroom.sh" up
trap '"$here/scripts/lesson-classroom.sh" down' EXIT
export LXCLAB_HOME="${LXCLAB_LESSON_HOME:-$here/_build/lesson-home}"
python -m pytest -n 2 --dist loadfile --nbval --nbval-sanitize-with tests/sanitize.cfg \
  -p no:cacheprovider notebooks
