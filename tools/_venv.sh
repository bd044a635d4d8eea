# Sourced by tools/test and tools/bench: create .venv on first use and install
# the project with the extras named in $EXTRAS; reinstall when setup.cfg changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

MIN_PY="${MIN_PY:-3.9}"     # the firmware runs on 3.9 (Raspberry Pi OS Bullseye)
if ! "$PY" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$MIN_PY'.split('.'))))" 2>/dev/null; then
  echo "error: Python $MIN_PY or newer is needed${WHY_PY:+ ($WHY_PY)} (found: $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.x" >&2
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
