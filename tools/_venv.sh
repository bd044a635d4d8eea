# Sourced by tools/test and tools/bench: create .venv on first use and install
# the project with the extras named in $EXTRAS; reinstall when setup.cfg changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
  echo "error: Python 3.9 or newer is needed (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "setting up $VENV (first run only)..." >&2
  "$PY" -m venv "$VENV" || {
    echo "error: cannot create a virtualenv; on Debian/Raspberry Pi OS: sudo apt install python3-venv" >&2
    exit 1; }
fi
STAMP="$VENV/.installed-${EXTRAS//,/-}-$(cksum < "$ROOT/setup.cfg" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ]; then
  echo "installing dependencies into $VENV ($EXTRAS)..." >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[$EXTRAS]"
  touch "$STAMP"
fi
cd "$ROOT"
