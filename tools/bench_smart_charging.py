"""Benchmark of the Smart Charging profile (ocpp_core/smart_charging).

    .venv/bin/python -m tools.bench_smart_charging [--runs 200]

Prints the time of GetCompositeSchedule's computation (p50, max) for a
connector with MaxChargingProfilesInstalled profiles of
ChargingScheduleMaxPeriods periods each (one ChargePointMaxProfile, the rest
TxDefaultProfiles of every kind), the time of one offer() (what the pilot
is set to at a period boundary), and the bytes written and fsyncs made to
install one profile (Store.save: temp file, fsync, rename, folder fsync).
"""

import argparse
import os
import shutil
import tempfile
import time

from ocpp_core.clock import Clock
from ocpp_core.connector import Connector
from ocpp_core.smart_charging import DEFAULTS, STORE_NAME, SmartCharging
from ocpp_core.station import StationProfile
from ocpp_core.store import Store
from ocpp_core.timestamps import format_utc


class _Config:
    def get(self, key):
        raise KeyError(key)       # the profile's declared defaults (smart_charging.DEFAULTS)


class _CP:
    def __init__(self, directory):
        self.config = _Config()
        self.store = Store(directory)
        self.clock = Clock()
        self.profile = StationProfile()
        self.connectors = {1: Connector(1)}
        self.journal = None


def _profile(pid, purpose, stack, kind, periods, now):
    sched = {"chargingRateUnit": "W" if pid % 2 else "A",
             "chargingSchedulePeriod": [{"startPeriod": i * 600,
                                         "limit": float(6 + (i * 7 + pid) % 26) *
                                         (690.0 if pid % 2 else 1.0)}
                                        for i in range(periods)]}
    raw = {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
           "chargingProfileKind": kind, "chargingSchedule": sched}
    if kind == "Recurring":
        raw["recurrencyKind"] = "Daily"
    if kind != "Relative":
        sched["startSchedule"] = format_utc(now - 3600 * pid)
        sched["duration"] = periods * 600 + 300 * pid
    return raw


def _percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args(argv)
    n = DEFAULTS["MaxChargingProfilesInstalled"]
    periods = DEFAULTS["ChargingScheduleMaxPeriods"]
    directory = tempfile.mkdtemp(prefix="bench-sc-")
    try:
        cp = _CP(directory)
        sc = SmartCharging(cp)
        now = cp.clock.now()
        kinds = ("Absolute", "Recurring", "Relative")
        for i in range(n):
            purpose = "ChargePointMaxProfile" if i == 0 else "TxDefaultProfile"
            kind = "Absolute" if i == 0 else kinds[i % 3]
            cid = 0 if i == 0 or i % 2 else 1
            before_fsyncs = cp.store.fsync_count
            status = sc.set_profile({"connectorId": cid, "csChargingProfiles":
                                     _profile(i + 1, purpose, i, kind, periods, now)})
            assert status == "Accepted", status
            fsyncs = cp.store.fsync_count - before_fsyncs
        size = os.path.getsize(os.path.join(directory, STORE_NAME))
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            sc.composite(1, 86400, "A")
            times.append(time.perf_counter() - t)
        offers = []
        c = cp.connectors[1]
        for _ in range(args.runs):
            t = time.perf_counter()
            sc.offer(c)
            offers.append(time.perf_counter() - t)
        _, schedule = sc.composite(1, 86400, "A")
        print("profiles installed: %d x %d periods (MaxChargingProfilesInstalled x "
              "ChargingScheduleMaxPeriods)" % (n, periods))
        print("GetCompositeSchedule (86400 s, %d periods out): p50 %.2f ms, max %.2f ms"
              % (len(schedule["chargingSchedulePeriod"]), _percentile(times, 0.5) * 1e3,
                 max(times) * 1e3))
        print("offer() at a boundary: p50 %.3f ms, max %.3f ms"
              % (_percentile(offers, 0.5) * 1e3, max(offers) * 1e3))
        print("install one profile (the %dth): %d bytes written (whole store file), %d fsyncs"
              % (n, size, fsyncs))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
