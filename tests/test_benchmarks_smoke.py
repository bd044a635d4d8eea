"""The benchmark scripts still run (tiny counts). No timing is asserted: only
that each one completes and prints the lines people read."""

import re

from tools import bench_engine, bench_firmware


def test_bench_engine_runs(capsys):
    assert bench_engine.main(["--n", "3"]) == 0
    out = capsys.readouterr().out
    for text in ("(a) tap, EV plugged, cached idTag, LocalPreAuthorize",
                 "(a) tap, idTag not decided locally",
                 "(b) EV plugged, authorization pending",
                 "(c) GetConfiguration, all keys",
                 "(c) ChangeConfiguration LightIntensity",
                 "(c) RemoteStartTransaction, EV plugged",
                 "(c) DataTransfer, unknown vendor",
                 "StartTransaction  event -> sent",
                 "StopTransaction   answer processed",
                 "journal append (journal/)"):
        assert text in out, out
    # every case line carries three numbers (p50, p99, max) after its frame name
    rows = re.findall(r"(StartTransaction|Authorize|CALLRESULT)\s+\d+\s+\d+\s+\d+", out)
    assert len(rows) == 8, out


def test_bench_firmware_runs(capsys):
    assert bench_firmware.main(["--calls", "8", "--sessions", "1", "--boots", "1",
                                "--idle-seconds", "0.5", "--charge-seconds", "0"]) == 0
    out = capsys.readouterr().out
    for text in ("start-up -> BootNotification, max of 1",
                 "VmRSS after boot",
                 "VmRSS after 1 charging session",
                 "CPU idle after boot",
                 "CSMS CALL -> CALLRESULT, meter healthy, p99",
                 "CSMS CALL -> CALLRESULT, meter offline, max",
                 "RemoteStart -> StartTransaction, max of 1",
                 "targets met:"):
        assert text in out, out
    judged = re.findall(r"\b(PASS|MISS)$", out, re.M)
    assert len(judged) == 9, out


def test_bench_security_runs(capsys):
    from tools import bench_security
    assert bench_security.main(["--n", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"cryptography import: VmRSS \d+ kB -> \d+ kB", out), out
    for profile in (1, 2, 3):
        assert re.search(r"profile %d\s+[\d.]+\s+[\d.]+\s+[\d.]+" % profile, out), out


def test_bench_update_runs(capsys):
    from tools import bench_update
    assert bench_update.main(["--size-mib", "1", "--rate-mib", "4", "--idle-calls", "5"]) == 0
    out = capsys.readouterr().out
    for text in ("during a full-speed download", "during a 4 MiB/s download",
                 "Installing -> new BootNotification", "MiB/s"):
        assert text in out, out
