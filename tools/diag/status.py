"""`status`: the running firmware's own view of the station.

Exit status 0 when nothing is wrong (linked, registered, clock known, no active
fault, the main loop answering), 1 when something is (listed under "Problems"),
2 when the firmware is not running.
"""

from tools.diag import checks, client, render

TIMEOUT = 10.0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "status", help="the firmware's view: link, registration, connectors, faults",
        description="Ask the running firmware for its state: CSMS link, registration, clock, "
                    "each connector's OCPP status and errorCode, the running transactions, "
                    "queued messages, the last faults, the modem and the meters.")
    p.add_argument("--timeout", type=float, default=TIMEOUT,
                   help="seconds to wait for the firmware (default %g)" % TIMEOUT)
    return p


def problems(status):
    """What is wrong, in words: [(what, detail)] (empty when all is well)."""
    found = []
    loop = status.get("main_loop") or {}
    if not loop.get("responding", True):
        found.append(("main loop", loop.get("error") or "does not answer"))
    link = status.get("link") or {}
    if not link.get("connected"):
        found.append(("CSMS link", "not connected" + (": %s" % link["last_error"]
                                                      if link.get("last_error") else "")))
    if status.get("registration") != "Accepted":
        found.append(("registration", "BootNotification %s" % status.get("registration")))
    if not (status.get("clock") or {}).get("valid"):
        found.append(("clock", "the time is unknown"))
    storage = status.get("storage")
    if storage and not storage.get("writable"):
        found.append(("data dir", checks.data_dir_check(storage)["detail"]))
    station = status.get("station") or {}
    for code, info in sorted((station.get("faults") or {}).items()):
        found.append(("station", "%s%s" % (code, ": %s" % info if info else "")))
    for cid, c in sorted((status.get("connectors") or {}).items(), key=lambda kv: int(kv[0])):
        for code, info in sorted((c.get("faults") or {}).items()):
            found.append(("connector %s" % cid, "%s%s" % (code, ": %s" % info if info else "")))
    return found


def run(args, out):
    with client.connect(args, timeout=args.timeout) as c:
        status = c.call("status", wait=args.timeout)
    found = problems(status)
    if getattr(args, "json", False):
        status["problems"] = [{"what": w, "detail": d} for w, d in found]
        render.emit_json(status, out)
    else:
        show(status, found, out)
    return 1 if found else 0


def _meter_text(meter):
    if not meter:
        return "no reading"
    parts = []
    if meter.get("energy_wh") is not None:
        parts.append("%.1f Wh" % meter["energy_wh"])
    if meter.get("power_w") is not None:
        parts.append("%.1f W" % meter["power_w"])
    if meter.get("voltage_v"):
        parts.append("/".join("%.1f" % v for v in meter["voltage_v"] if v is not None) + " V")
    if meter.get("current_a"):
        parts.append("/".join("%.2f" % v for v in meter["current_a"] if v is not None) + " A")
    text = ", ".join(parts) or "no values"
    if meter.get("age_s") is not None:
        text += " (%s ago)" % render.ago(meter["age_s"])
    return text


def _limit_text(profiles):
    """"16.0 A (profiles 3, 7)" from the Smart Charging facts; None without profiles."""
    if not profiles or not profiles.get("ids"):
        return None
    return "%.1f A (profile%s %s)" % (profiles["limit_a"], "s" if len(profiles["ids"]) > 1
                                      else "", ", ".join(str(i) for i in profiles["ids"]))


def show(s, found, out):
    st = s.get("station") or {}
    link = s.get("link") or {}
    clock = s.get("clock") or {}
    loop = s.get("main_loop") or {}
    msgs = s.get("messages") or {}
    out.write("Charge point %s  (firmware %s, %s %s, pid %s)\n" % (
        st.get("charge_point_id"), st.get("firmware_version"), st.get("vendor") or "",
        st.get("model") or "", st.get("pid")))
    if link.get("connected"):
        link_text = "connected since %s (%s)" % (render.local_time(link.get("since")),
                                                 render.ago(link.get("for_s")))
    else:
        link_text = "NOT connected" + (" - %s" % link["last_error"] if link.get("last_error")
                                       else "")
    if clock.get("valid"):
        clock_text = "%s (%s)" % (render.local_time(clock.get("now")),
                                  "set by the CSMS" if clock.get("source") == "csms"
                                  else "system clock")
    else:
        clock_text = "UNKNOWN (not yet set by the CSMS, no NTP)"
    render.pairs([
        ("CSMS", st.get("csms_url")),
        ("link", link_text),
        ("registration", s.get("registration")),
        ("clock", clock_text),
        ("main loop", "answers in %.0f ms" % loop["answer_ms"] if loop.get("responding")
         else "NOT ANSWERING - %s" % loop.get("error")),
        ("messages", "%d queued, %d set aside" % (msgs.get("queued", 0),
                                                   msgs.get("set_aside", 0))),
        ("station", "%s, %s" % (st.get("ocpp_status"), st.get("error_code"))),
        ("config file", st.get("config_file")),
        ("data dir", "%s (%s)" % (st.get("data_dir"), checks.data_dir_check(
            s.get("storage"))["detail"])),
        ("started", render.local_time(st.get("started"))),
    ], out)
    if s.get("pending_reboot"):
        render.pairs([("reboot needed", "for %s" % ", ".join(s["pending_reboot"]))], out)

    render.heading("Connectors", out)
    rows = []
    for cid, c in sorted((s.get("connectors") or {}).items(), key=lambda kv: int(kv[0])):
        tx = c.get("transaction") or {}
        rows.append({
            "id": cid, "status": c.get("ocpp_status"), "error": c.get("error_code"),
            "ev": c.get("ev_state"), "contactor": "closed" if c.get("contactor_closed") else "open",
            "tx": tx.get("transaction_id") if tx else None,
            "tag": tx.get("id_tag") if tx else None,
            "start": tx.get("meter_start") if tx else None,
            "energy": ("%.0f Wh" % tx["energy_wh"]) if tx and tx.get("energy_wh") is not None
            else None,
            "meter": _meter_text(c.get("meter")),
            "limit": _limit_text(c.get("charging_profiles")),
        })
    render.table(rows, [("id", "#"), ("status", "status"), ("error", "errorCode"),
                        ("ev", "EV"), ("contactor", "contactor"), ("tx", "transaction"),
                        ("tag", "idTag"), ("start", "meterStart"), ("energy", "charged"),
                        ("meter", "meter"), ("limit", "charging limit")], out)

    render.heading("Last faults (newest first)", out)
    render.table([{"at": render.local_time(f.get("at")),
                   "where": "station" if f.get("connector") == 0 else
                   "connector %s" % f.get("connector"),
                   "code": f.get("error_code"), "event": f.get("event"), "info": f.get("info")}
                  for f in s.get("faults") or []],
                 [("at", "time"), ("where", "where"), ("code", "errorCode"),
                  ("event", "event"), ("info", "info")], out)

    render.heading("Devices", out)
    modem = s.get("modem")
    if modem:
        modem_text = "%s dBm, %s, SIM %s, operator %s, ICCID %s (%s ago)" % (
            modem.get("signal_dbm"), "registered" if modem.get("registered") else
            "NOT registered", "ready" if modem.get("sim_ready") else "NOT ready",
            modem.get("operator") or "-", modem.get("iccid") or "-",
            render.ago(modem.get("age_s")))
    else:
        modem_text = "no status yet"
    card = (s.get("rfid") or {}).get("last_card")
    render.pairs([
        ("modem", modem_text),
        ("card reader", "last card %s at %s" % (card["id_tag"], render.local_time(card.get("at")))
         if card else "no card since start-up"),
    ], out)

    render.heading("Problems", out)
    if not found:
        out.write("  none\n")
    for what, detail in found:
        out.write("  %s: %s\n" % (what, detail))
