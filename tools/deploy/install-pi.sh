#!/usr/bin/env bash
# Install the charge point firmware on a Raspberry Pi (Raspberry Pi OS Bookworm;
# Pi 3, 4, 5 and Zero 2 W). Run from a checkout:   sudo tools/deploy/install-pi.sh
#
#   - copies the firmware to /opt/pi-ocpp and creates its venv with the Pi extra
#     (rpi-lgpio provides the RPi.GPIO API on every Pi, the Pi 5 included; spidev)
#   - creates the system user pi-ocpp (groups gpio, spi, dialout)
#   - installs /etc/pi-ocpp/station.ini (only if missing; mode 0600) and the
#     systemd unit pi-ocpp.service (Type=notify, watchdog, /var/lib/pi-ocpp)
#   - enables SPI and the UART (serial console off) with raspi-config when present
# Options: --dry-run prints the steps without doing them.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX=/opt/pi-ocpp
ETC=/etc/pi-ocpp
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
