"""The ``convexnn`` command line: ``solvers``, ``demo`` and error reporting."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from convexnn import solvers
from convexnn.cli import main


def test_solvers_lists_every_back_end_with_its_state(capsys):
    assert main(["solvers"]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["solver", "installed", "licensed", "usable"]
    rows = {line.split()[0]: line.split()[1:4] for line in lines[1:]}
    assert list(rows) == solvers.names()
    for state in solvers.available():
        installed, licensed, usable = rows[state.name]
        assert installed == ("yes" if state.installed else "no")
        assert usable == ("yes" if state.usable else "no")
        expected = "n/a" if state.licensed is None else ("yes" if state.licensed else "NO")
        assert licensed == expected
    if not solvers.info("mosek").usable and solvers.info("mosek").installed:
        assert re.search(r"^mosek\s+yes\s+NO\s+no\s+.*license", out, re.MULTILINE)
    assert err == ""


def test_unknown_solver_is_one_line_on_stderr_with_exit_code_2(capsys):
    assert main(["demo", "--solver", "nope"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1
    assert err.startswith("convexnn: error: UnknownSolverError: unknown solver 'nope'")
    assert "scs" in err


def test_bad_command_line_is_reported_with_exit_code_2(capsys):
    try:
        code = main(["no-such-command"])
    except SystemExit as exit:  # argparse's own handling
        code = exit.code
    assert code == 2
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err


def parse_demo(out: str) -> dict[str, str]:
    fields = {}
    for line in out.splitlines():
        match = re.match(
            r"(solver|objective|lower bound|certified gap|neurons|test accuracy)\s{2,}(.*)", line
        )
        if match:
            fields[match.group(1)] = match.group(2)
    return fields


def test_demo_reports_a_certified_optimum(capsys):
    """About 8 s on two cores (Clarabel's retry after its numerical failure here)."""
    assert main(["demo"]) == 0
    out, _ = capsys.readouterr()
    fields = parse_demo(out)
    assert set(fields) == {
        "solver", "objective", "lower bound", "certified gap", "neurons", "test accuracy"
    }
    objective, lower = float(fields["objective"]), float(fields["lower bound"])
    assert 0 < lower <= objective
    relative = float(re.search(r"relative ([0-9.e+-]+)", fields["certified gap"]).group(1))
    # The printed values have 8 significant digits.
    assert relative == pytest.approx((objective - lower) / objective, rel=0.05, abs=1e-7)
    assert 0 <= relative < 1e-3
    assert int(fields["neurons"]) > 0
    convex, logistic = map(float, re.findall(r"\d\.\d{4}", fields["test accuracy"]))
    assert 0.5 < convex <= 1.0 and 0.9 < logistic <= 1.0


def test_demo_with_a_fixed_solver_and_large_beta(capsys):
    """The fast path: a strong penalty gives a small network in a couple of seconds."""
    assert main(["demo", "--solver", "scs", "--beta", "1.0"]) == 0
    fields = parse_demo(capsys.readouterr().out)
    # SCS is first order: whether its network meets tol=1e-6 depends on its release;
    # the status must match the certified gap either way.
    status = re.match(r"scs \((optimal|optimal_inaccurate)\)", fields["solver"]).group(1)
    relative = float(re.search(r"relative ([0-9.e+-]+)\)", fields["certified gap"]).group(1))
    assert (status == "optimal") == (relative <= 1e-6)
    assert float(fields["lower bound"]) <= float(fields["objective"])
    convex = float(re.findall(r"\d\.\d{4}", fields["test accuracy"])[0])
    assert convex > 0.9


HEAVY = ("torch", "cvxpy", "sklearn", "pandas", "matplotlib", "scipy")


def _heavy_modules_loaded_by(code: str) -> str:
    """The heavy packages in ``sys.modules`` after ``code`` runs in a fresh interpreter.

    Printed last, after whatever ``code`` prints (help text).
    """
    check = f"{code}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", f"import sys\n{check}"], cwd="/",
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return out.strip().splitlines()[-1]


def test_building_the_parser_imports_no_heavy_package():
    """The data-set choices of ``compare`` come without scikit-learn, torch or pandas."""
    code = "from convexnn.cli import build_parser; build_parser()"
    assert _heavy_modules_loaded_by(code) == "[]"


@pytest.mark.parametrize("argv", [["--help"], ["compare", "--help"]])
def test_help_imports_no_heavy_package(argv):
    code = (
        "from convexnn.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass"
    )
    assert _heavy_modules_loaded_by(code) == "[]"
