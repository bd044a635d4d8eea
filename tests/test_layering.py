"""The project's packages import one another in one direction only:

    tests -> tools -> firmware -> hal_mocks -> drivers -> ocpp_core

A package may import itself and any package to its right, never one to its
left: then each can be tested, replaced or ported without those above it, and
there is no import cycle. ocpp_core (portable to MicroPython) imports only the
standard library and itself.

The check reads the source (ast), so it sees every import: at module level or
inside a function, `import a.b` and `from a import b`, relative imports
(resolved against the file's package) and importlib.import_module("a.b") /
__import__("a.b") with a literal name.
"""

import ast
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Top first: each may import the ones after it.
LAYERS = ("tests", "tools", "firmware", "hal_mocks", "drivers", "ocpp_core")
CHECKED = LAYERS[1:]        # tests may import anything


def _dynamic_import_name(call):
    """The literal module name of importlib.import_module("x") or __import__("x"), else None."""
    func = call.func
    named = (isinstance(func, ast.Name) and func.id in ("__import__", "import_module")
             or isinstance(func, ast.Attribute) and func.attr == "import_module")
    if not named or not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not arg.value.startswith("."):
        return arg.value
    return None


def imports_of(path, root):
    """(line, absolute module name) for every import in the file at `path`
    (inside `root`). A relative import that climbs above its top-level package
    (an ImportError in Python) is given with its leading dots."""
    package = list(path.relative_to(root).parts[:-1])   # a.b for a/b/c.py and a/b/__init__.py
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.lineno, node.module
                continue
            up = node.level - 1
            if up >= len(package):
                yield node.lineno, "." * node.level + (node.module or "")
                continue
            base = package[:len(package) - up]
            yield node.lineno, ".".join(base + ([node.module] if node.module else []))
        elif isinstance(node, ast.Call):
            name = _dynamic_import_name(node)
            if name is not None:
                yield node.lineno, name


def python_files(root, package):
    return sorted(Path(root, package).rglob("*.py"))


def layering_violations(root, layers=LAYERS, checked=CHECKED):
    """One "file:line: package A imports package B (not allowed)" for each
    import of a package to the left of A in `layers`, in the files of the
    `checked` packages under `root`."""
    rank = {name: i for i, name in enumerate(layers)}
    problems = []
    for package in checked:
        for path in python_files(root, package):
            for line, module in imports_of(path, root):
                target = module.split(".")[0]
                if target in rank and rank[target] < rank[package]:
                    problems.append("%s:%d: package %s imports package %s (not allowed)"
                                    % (path.relative_to(root), line, package, target))
    return problems


def foreign_imports(root, package, allowed=sys.stdlib_module_names):
    """One "file:line: package P imports M (not the standard library)" for each
    import in `package` of a top-level module that is neither in `allowed` nor
    the package itself."""
    problems = []
    for path in python_files(root, package):
        for line, module in imports_of(path, root):
            top = module.split(".")[0]
            if top != package and top not in allowed:
                problems.append("%s:%d: package %s imports %s (not the standard library)"
                                % (path.relative_to(root), line, package, module))
    return problems


# --- the project ----------------------------------------------------------------------------
def test_every_package_imports_only_downwards():
    problems = layering_violations(ROOT)
    assert not problems, "imports against the layering:\n" + "\n".join(problems)


def test_the_engine_imports_only_the_standard_library():
    problems = foreign_imports(ROOT, "ocpp_core")
    assert not problems, "\n".join(problems)


def test_the_check_reads_every_package():
    # a wrong ROOT or an empty package would make the checks above pass vacuously
    for package in CHECKED:
        files = python_files(ROOT, package)
        assert files, package
        assert any(list(imports_of(f, ROOT)) for f in files), package


# --- the checker itself ----------------------------------------------------------------------
def _tree(root, files):
    for name, text in files.items():
        path = Path(root, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in CHECKED:
        Path(root, package).mkdir(exist_ok=True)
        init = Path(root, package, "__init__.py")
        if not init.exists():
            init.write_text("")


def test_checker_reports_each_upward_import_with_file_and_line(tmp_path):
    _tree(tmp_path, {
        "hal_mocks/x.py": ("import json\n"
                           "from drivers import hal\n"                 # allowed: downwards
                           "\n"
                           "def later():\n"
                           "    from firmware.jsonlines import one_line\n"),
        "drivers/y.py": "import hal_mocks.sim as sim\n",
        "ocpp_core/z.py": ("import importlib\n"
                           "importlib.import_module('tools.diag')\n"),
        "tools/ok.py": "import firmware, hal_mocks, drivers, ocpp_core\n",
        "tests/test_any.py": "import tools\n",                         # not checked
    })
    assert sorted(layering_violations(tmp_path)) == [
        os.path.join("drivers", "y.py") + ":1: package drivers imports package hal_mocks "
        "(not allowed)",
        os.path.join("hal_mocks", "x.py") + ":5: package hal_mocks imports package firmware "
        "(not allowed)",
        os.path.join("ocpp_core", "z.py") + ":2: package ocpp_core imports package tools "
        "(not allowed)",
    ]


def test_production_code_may_not_import_the_tests(tmp_path):
    _tree(tmp_path, {"tools/x.py": "from tests.support.device_fixtures import FakeClock\n"})
    assert layering_violations(tmp_path) == [
        os.path.join("tools", "x.py") + ":1: package tools imports package tests (not allowed)"]


def test_relative_imports_are_resolved_against_the_files_package(tmp_path):
    # ocpp_core/drivers.py is the engine's own module, not the drivers package
    _tree(tmp_path, {
        "ocpp_core/drivers.py": "",
        "ocpp_core/a.py": "from .drivers import x\nfrom . import drivers\n",
        "firmware/sub/__init__.py": "",
        "firmware/sub/b.py": "from ..hal_factory import build_hal\nfrom .. import cli\n",
    })
    assert layering_violations(tmp_path) == []
    assert foreign_imports(tmp_path, "ocpp_core") == []
    assert list(imports_of(tmp_path / "firmware" / "sub" / "b.py", tmp_path)) == [
        (1, "firmware.hal_factory"), (2, "firmware")]


def test_engine_check_reports_a_third_party_import(tmp_path):
    _tree(tmp_path, {"ocpp_core/w.py": "import json\n\ndef f():\n    import websocket\n"})
    assert foreign_imports(tmp_path, "ocpp_core") == [
        os.path.join("ocpp_core", "w.py") + ":4: package ocpp_core imports websocket "
        "(not the standard library)"]
