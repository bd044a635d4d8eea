"""`python -m firmware`: parse the flags, load the station config, run."""

import argparse
import signal
import sys

from firmware import logging_setup
from firmware.station_config import HAL_KINDS, ConfigError, load


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, no usage dump: what a technician reads in the journal.
        self.exit(2, "firmware: error: %s (see --help)\n" % message)


def build_parser():
    p = _Parser(
        prog="python -m firmware",
        description="OCPP 1.6-J charge point firmware for a Raspberry Pi controller.")
    p.add_argument("--hal", help="hardware: %s (default mock)" % ", ".join(HAL_KINDS))
    p.add_argument("--csms-url", help="central system websocket URL, e.g. ws://127.0.0.1:9000/ocpp")
    p.add_argument("--charge-point-id", help="this charge point's id (last part of the URL)")
    p.add_argument("--data-dir", help="directory for everything that must survive a power cut")
    p.add_argument("--bench-port", type=str, help="bench control port on 127.0.0.1 (mock HAL)")
    p.add_argument("--password", help="basic-auth password (security profile 1/2)")
    p.add_argument("--config", help="station INI file; flags override its values")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    return p



def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = load(args)
    except ConfigError as e:
        print("firmware: error: %s" % e, file=sys.stderr)
        return 2
    logging_setup.setup(cfg.log_level)
    from firmware.main_loop import Firmware
    fw = Firmware(cfg)
    signal.signal(signal.SIGTERM, lambda *_: fw.stop())
    signal.signal(signal.SIGINT, lambda *_: fw.stop())
    fw.run()
    return 0
