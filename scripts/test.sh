#!/usr/bin/env bash
# Run the whole suite: library tests, then every notebook under strict nbval.
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
if compgen -G "notebooks/*.ipynb" >/dev/null; then
  python -m pytest -n 2 --dist loadfile --nbval --nbval-sanitize-with tests/sanitize.cfg \
    -p no:cacheprovider notebooks
fi
