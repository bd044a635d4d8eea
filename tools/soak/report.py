"""The soak's summary: a table of the invariants, the figures, and the last line
`N passed, M failed (kills ..., drops ..., ...)`."""

FIGURES_LINE = ("kills", "drops", "frames", "sessions", "lost", "duplicated", "reordered",
                "crashes")


def figures(driver_figures, verdict):
    f = dict(driver_figures)
    f.update(verdict.figures)
    return f


def last_line(verdict, f):
    parts = ["%s %s" % (name, f.get(name, 0)) for name in FIGURES_LINE]
    parts.append("max response %.2f s" % f.get("max_response_s", 0.0))
    return "%d passed, %d failed (%s)" % (verdict.passed, verdict.failed, ", ".join(parts))


def table(verdict, f):
    lines = ["", "invariant                                      result  detail"]
    for name, ok, detail in verdict.results:
        lines.append("%-46s %-6s  %s" % (name, "PASS" if ok else "FAIL", detail))
    if verdict.notes:
        lines.append("")
        lines.append("tolerated (--tolerate-ack-window: killed within 0.5 s of the answer, "
                     "before writing it down; issue 15): %d" % len(verdict.notes))
        lines.extend("  " + n for n in verdict.notes[:10])
    lines.append("")
    lines.append("figures")
    rows = [("kills (by instant)", "%d  %s" % (f["kills"], _by(f["kills_by_instant"]))),
            ("link drops (by kind)", "%d  %s" % (f["drops"], _by(f["drops_by_kind"]))),
            ("hostile frames (by kind)", "%d  %s" % (f["frames"], _by(f["fuzz_by_kind"]))),
            ("sessions / transactions", "%d / %d" % (f["sessions"], f["transactions"])),
            ("firmware lives / connections", "%d / %d" % (f["lives"], f["connections"])),
            ("Resets sent", "%d" % f["resets"]),
            ("lost / duplicated / reordered", "%d / %d (%d tolerated) / %d"
             % (f["lost"], f["duplicated"], f["duplicated_tolerated"], f["reordered"])),
            ("ack window: latest kill that made a re-send", "%.1f ms"
             % f["ack_window_ms"]),
            ("crashes", "%d" % f["crashes"]),
            ("CSMS CALLs judged / unjudged (link gone)", "%d / %d"
             % (f["calls_judged"], f["calls_unjudged"])),
            ("max response time", "%.3f s" % f["max_response_s"]),
            ("instants that did not come (fallback used)", ", ".join(f["missed_instants"])
             or "none"),
            ("run", "%s in %.1f s" % ("complete" if f["completed"] else "INCOMPLETE",
                                     f["seconds"]))]
    for label, value in rows:
        lines.append("  %-44s %s" % (label, value))
    for p in f.get("setup_problems") or ():
        lines.append("  setup: %s" % p)
    return lines


def _by(d):
    return ", ".join("%s %d" % (k, v) for k, v in sorted(d.items()))


def as_json(verdict, f):
    return {"invariants": [{"name": n, "ok": ok, "detail": d} for n, ok, d in verdict.results],
            "failures": verdict.failures, "tolerated": verdict.notes, "figures": f,
            "passed": verdict.passed, "failed": verdict.failed}
