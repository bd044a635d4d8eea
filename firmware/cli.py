"""`python -m firmware`: parse the flags, load the station config, run.

A Reset from the CSMS ends the run; the process then re-executes itself with
the same arguments (same PID, fresh interpreter), as the bench contract says.
So does an installed update (restart kind "firmware"): at the start the
launcher (firmware/launcher.py) execs into the release releases/current names,
and a release on trial is watched until its BootNotification is Accepted.
"""

import argparse
import logging
import os
import signal
import sys

from firmware import logging_setup
from drivers.hal import DeviceError
from firmware.station_config import HAL_KINDS, ConfigError, load

log = logging.getLogger("firmware")


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


def _fail(message):
    print("firmware: error: %s" % message, file=sys.stderr)
    return 2


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        cfg = load(args)
    except ConfigError as e:
        return _fail(e)
    logging_setup.setup(cfg.log_level)
    from firmware.maintenance import MaintenanceError, MaintenanceServer, MediumError, socket_paths
    # First of all: a firmware already running on this data dir answers on its
    # socket, and this one must then not touch the journal. A data dir that
    # cannot hold the socket (read-only, full) is not fatal: the socket goes to
    # the fallback place (maintenance.fallback_socket_path), checked there too.
    paths = socket_paths(cfg.data_dir)
    maint = None
    for i, path in enumerate(paths):
        maint = MaintenanceServer(path, None)
        try:
            maint.start()
            break
        except MediumError as e:
            if i + 1 == len(paths):
                return _fail(e)
            log.warning("%s; using %s instead", e, paths[i + 1])
        except MaintenanceError as e:    # another firmware answers, a bad path, ...
            return _fail(e)
    # The release to run (may exec into it): after the socket check, so that a
    # second firmware started by mistake never counts a trial start.
    from firmware import launcher
    launcher.enter(cfg.releases_dir, sys.argv[1:] if argv is None else argv, log,
                   before_exec=maint.stop)
    try:
        return _run(cfg, maint)
    finally:
        maint.stop()


def _run(cfg, maint):
    from firmware.maintenance_handlers import MaintenanceBridge
    from firmware.hal_factory import build_hal
    from firmware.main_loop import Firmware
    try:
        hal = build_hal(cfg)
    except ConfigError as e:
        return _fail(e)
    except DeviceError as e:
        return _fail("hardware: %s" % e)
    bench = None
    if hal.bench is not None:
        from hal_mocks.bench_server import BenchServer
        bench = BenchServer(hal.bench, cfg.bench_port)
        try:
            bench.start()
        except OSError as e:
            hal.close()
            return _fail("bench port %s on 127.0.0.1 is not usable: %s"
                         % (cfg.bench_port, getattr(e, "strerror", None) or e))
        log.info("bench control on 127.0.0.1:%d", bench.port)
    fw = Firmware(cfg, hal)
    fw.maintenance.server = maint
    maint.set_handler(MaintenanceBridge(fw).handle)
    if bench is not None:
        bench.status_provider = lambda: fw.snapshot
    signal.signal(signal.SIGTERM, lambda *_: fw.stop())
    signal.signal(signal.SIGINT, lambda *_: fw.stop())
    from firmware.launcher import watch_trial
    trial = watch_trial(cfg.releases_dir, cfg.boot_trial_seconds, fw.restart, log)
    if trial is not None:
        fw.on_registration = trial.registration
    try:
        restart = fw.run()
    finally:
        if trial is not None:
            trial.stop()
        if bench is not None:
            bench.stop()
    if restart:
        maint.stop()      # before exec: the next run finds no stale socket
        log.info("re-executing after a %s %s", restart,
                 "update" if restart == "firmware" else "reset")
        logging.shutdown()
        os.execv(sys.executable, [sys.executable, "-m", "firmware"] + sys.argv[1:])
    return 0
