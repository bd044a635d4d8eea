"""`python -m tools.diag` (console script pi-ocpp-diag): what a field technician
runs at a charger that "doesn't work" to find the faulty part within minutes.

    status     the running firmware's view: link, registration, connectors, faults
    selftest   every device: pass/fail, the OCPP errorCode it reports, what to check
    config     the OCPP configuration (show; set KEY VALUE)
    journal    queued and set-aside transaction messages, recent transactions
    security-log   show the newest security events; clear --yes (tools/diag/security_log.py)
    trace      live OCPP traffic, readable
    bundle     one .tar.gz for the support team (no secrets in it)
    csms       the path to the central system, step by step   (tools/diag/csms_check.py)
    rfid, meter, modem   one device at a time                  (tools/diag/device_cmds.py)

The first seven ask the running firmware over its maintenance socket (see
firmware/maintenance.py): the devices belong to it. The firmware reports facts;
what they mean (pass or fail, the errorCode, what to check) is decided here, in
checks.py with the texts of hints.py. Exit status: 0 every check passed, 1
something failed, 2 the diagnosis could not run (firmware not running, usage
error, subcommand not in this build).
"""
