"""A short soak (python -m tools.soak) as part of the test suite: 20 kill -9, 10 link
drops, 1,000 hostile frames, seeded; every invariant must hold and the run must
have done everything it was asked.

STRICT_DUPLICATES: while False the run passes --tolerate-ack-window: a transaction
message re-sent after a kill -9 that came within 0.5 s of its CALLRESULT, before
the station's next CALL, does not fail the run (the station may have died between
the answer's arrival and its journal write: issue 15's known MeterValues
duplicate is one of these, and the soak's "during journal write" kills aim at
that window). Such re-sends are still counted, listed in the JSON ("tolerated")
and printed here; any other duplicate fails. Flip to True to make the test
strict (once the journal guarantees it, or to see them fail).
"""

import json

import pytest

from tools.soak import cli

STRICT_DUPLICATES = False
KILLS, DROPS, FRAMES = 20, 10, 1000
MAX_SECONDS = 80       # starts no new step after that: the test stays under ~90 s


def test_soak_short_run(tmp_path, capsys):
    args = ["--kills", str(KILLS), "--drops", str(DROPS), "--fuzz", str(FRAMES), "--seed", "1",
            "--max-seconds", str(MAX_SECONDS), "--json", "--scratch", str(tmp_path / "soak")]
    if not STRICT_DUPLICATES:
        args.append("--tolerate-ack-window")
    rc = cli.main(args)
    out = capsys.readouterr()
    doc = json.loads(out.out)
    f = doc["figures"]
    if doc["tolerated"]:
        print("tolerated (--tolerate-ack-window, issue 15):\n  " + "\n  ".join(doc["tolerated"]))
    assert (f["kills"], f["drops"], f["frames"]) == (KILLS, DROPS, FRAMES), \
        "the run did not do what was asked (%s):\n%s" % (doc["last_line"], out.err[-3000:])
    assert f["completed"], out.err[-3000:]
    broken = {i["name"]: doc["failures"][i["name"]][:5] for i in doc["invariants"] if not i["ok"]}
    assert not broken, "%s\nlogs: %s" % (json.dumps(broken, indent=1), tmp_path / "soak")
    assert doc["last_line"].startswith("%d passed, 0 failed" % len(doc["invariants"]))
    assert f["sessions"] > 0 and f["transactions"] > 0 and f["lives"] == KILLS + 1
    assert rc == 0


def test_soak_refuses_a_scratch_folder_in_use(tmp_path, capsys):
    (tmp_path / "old.log").write_text("a previous run")
    assert cli.main(["--kills", "1", "--scratch", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_soak_names_the_instants_it_knows(capsys):
    with pytest.raises(SystemExit) as e:
        cli.parse_args(["--instants", "during lunch"])
    assert e.value.code == 2
    assert "during journal write" in capsys.readouterr().err
    assert cli.parse_args(["--instants", "after tap, during Reset"]).instants == \
        ["after tap", "during Reset"]
