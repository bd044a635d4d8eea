"""The soak benchmark: the firmware as a subprocess against a CSMS on loopback,
put through power cuts, link drops and hostile frames, judged from the CSMS's
ordered log.

    python -m tools.soak [--hal mock|emulated] [--seed N] [--max-seconds S]
                         [--kills 200] [--drops 100] [--fuzz 10000] [--json]
                         [--tolerate-ack-window] [--instants NAME,NAME] [--keep]

Modules, one job each:
  csms.py     the CSMS under the tool's control, with its ordered log
  station.py  the firmware's lives (subprocess, logs, bench socket)
  chaos.py    the driver: sessions, kills at chosen instants, drops, fuzz bursts
  fuzz.py     the hostile frames
  checker.py  the invariants over the log
  report.py   the summary table, the JSON, the last line
"""
