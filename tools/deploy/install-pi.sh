#!/usr/bin/env bash
# Install the charge point firmware on a Raspberry Pi (Raspberry Pi OS Bookworm;
# Pi 3, 4, 5 and Zero 2 W). Run from a checkout:   sudo tools/deploy/install-pi.sh
#
#   - copies the firmware to /opt/pi-ocpp and creates its venv with the Pi extra
#     (rpi-lgpio provides the RPi.GPIO API on every Pi, the Pi 5 included; spidev);
#     that copy is the launcher the unit starts, never changed by an update
#   - installs the same files as the first release of the A/B layout (README,
#     "Updating the firmware"): /var/lib/pi-ocpp/releases/<version>/ and the
#     link releases/current to it; updates (UpdateFirmware) go beside it
#   - creates the system user pi-ocpp (groups gpio, spi, dialout)
#   - installs /etc/pi-ocpp/station.ini (only if missing; mode 0600) and the
#     systemd unit pi-ocpp.service (Type=notify, watchdog, /var/lib/pi-ocpp)
#   - enables SPI and the UART (serial console off) with raspi-config when present
# Options: --dry-run prints the steps without doing them.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX=/opt/pi-ocpp
ETC=/etc/pi-ocpp
STATE=/var/lib/pi-ocpp          # the unit's StateDirectory: --data-dir, releases/ in it
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1

run() { echo "+ $*"; [ "$DRY" = 1 ] || "$@"; }

if [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "error: run as root (sudo $0)" >&2; exit 1
fi

run apt-get install -y python3-venv python3-dev
if ! id pi-ocpp >/dev/null 2>&1; then
  run useradd --system --home-dir /var/lib/pi-ocpp --shell /usr/sbin/nologin pi-ocpp
fi
for g in gpio spi dialout; do
  if getent group "$g" >/dev/null; then run usermod -aG "$g" pi-ocpp; fi
done

run install -d -m 0755 "$PREFIX"
run cp -r "$SRC/setup.cfg" "$SRC/pyproject.toml" "$SRC/README.md" \
  "$SRC/ocpp_core" "$SRC/firmware" "$SRC/drivers" "$SRC/hal_mocks" "$SRC/tools" "$PREFIX/"
run python3 -m venv "$PREFIX/.venv"
run "$PREFIX/.venv/bin/pip" install --upgrade pip
run "$PREFIX/.venv/bin/pip" install "$PREFIX[pi]"

# The first release of the A/B layout (firmware/releases.py), owned by the
# service user who installs the next ones; re-running the installer makes this
# checkout current and keeps the one before as previous.
run install -d -m 0700 -o pi-ocpp -g pi-ocpp "$STATE"
run runuser -u pi-ocpp -- env -C "$PREFIX" "$PREFIX/.venv/bin/python" -m firmware.releases \
  --root "$STATE/releases" seed --source "$PREFIX"

run install -d -m 0750 -o root -g pi-ocpp "$ETC"
if [ ! -f "$ETC/station.ini" ]; then
  run install -m 0640 -o root -g pi-ocpp "$SRC/tools/deploy/station.example.ini" "$ETC/station.ini"
fi
run install -m 0644 "$SRC/tools/deploy/pi-ocpp.service" /etc/systemd/system/pi-ocpp.service

if command -v raspi-config >/dev/null 2>&1; then
  run raspi-config nonint do_spi 0          # SPI on (card reader)
  run raspi-config nonint do_serial_cons 1  # no login console on the UART
  run raspi-config nonint do_serial_hw 0    # UART on (pilot board)
fi

run systemctl daemon-reload
run systemctl enable pi-ocpp.service
cat <<MSG

Installed. Next:
  1. edit $ETC/station.ini (charge point id, CSMS URL and password, meter, wiring)
  2. sudo systemctl start pi-ocpp && journalctl -u pi-ocpp -f
  3. check the hardware: sudo -u pi-ocpp $PREFIX/.venv/bin/python -m tools.diag selftest
A reboot may be needed once for SPI/UART changes.
MSG
