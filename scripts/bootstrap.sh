#!/usr/bin/env bash
# Create .venv with the pinned dependency set (requirements.lock) and the project itself.
# Re-running is cheap: the install step is skipped while the lock file is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
  || { echo "error: Python 3.11 is required (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.lock.sha256
want=$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing pinned dependencies (requirements.lock)"
  pip_install() {
    # Some package mirrors name index folders that hold nothing; pip warns once per package about it.
    .venv/bin/python -m pip install --quiet "$@" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }
  }
  pip_install --upgrade pip
  pip_install -r requirements.lock
  pip_install --no-deps -e .
  echo "$want" > "$stamp"
fi
