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
# The library first; the lessons run even when it failed, so that one run shows every failure.
library=0
python -m pytest -n 2 --dist loadfile tests || library=$?

# The lessons run against their own seeded classroom on the addresses they teach (127.0.0.1:5000
# and :5001), in this checkout's own network namespace, with their kernels: a classroom running on
# the host, or another checkout's tests, is never in the way.
"$here/scripts/lesson-classroom.sh" up
trap '"$here/scripts/lesson-classroom.sh" down' EXIT
export LXCLAB_HOME="${LXCLAB_LESSON_HOME:-$here/_build/lesson-home}"
lessons=0
# A kernel gets 5 minutes to start, not nbval's 60 s: in a VM under TCG on a busy host, lesson 02's took longer.
"$here/scripts/lesson-classroom.sh" exec python -m pytest -n 2 --dist loadfile --nbval \
  --nbval-sanitize-with tests/sanitize.cfg --nbval-kernel-startup-timeout 300 -p no:cacheprovider notebooks \
  || lessons=$?
exit $((library ? library : lessons))
