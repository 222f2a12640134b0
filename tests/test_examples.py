"""The example scripts run end to end (small sizes) and write their tables and figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_HEADER = b"\x89PNG\r\n\x1a\n"

CASES = {
    "quickstart.py": (
        ["--solver", "clarabel"],
        ["quickstart.md", "quickstart.csv", "decision_values.png"],
    ),
    "planted_convex_vs_backprop.py": (
        ["--small", "--solvers", "clarabel,scs"],
        ["comparison.md", "comparison.csv", "comparison.json", "objective_vs_time.png",
         "test_metric.png"],
    ),
    "classification_convex_vs_backprop.py": (
        ["--small", "--dataset", "iris"],
        ["comparison.md", "comparison.csv", "comparison.json", "objective_vs_time.png",
         "test_metric.png"],
    ),
    "cnn_pooling_digits.py": (
        ["--small"],
        ["comparison.md", "comparison.csv", "comparison.json", "objective_vs_time.png",
         "test_metric.png", "summary_rows.md"],
    ),
    "paper_planted.py": (
        ["--small"],
        ["summary.md", *(f"{case}-40x4/{name}" for case in ("heavy-tailed", "gaussian")
                         for name in ("comparison.md", "comparison.json",
                                      "objective_vs_time.png", "test_metric.png"))],
    ),
    "paper_accuracy.py": (
        ["--small", "--datasets", "wine"],
        ["summary.md", "wine/comparison.md", "wine/comparison.json",
         "wine/objective_vs_time.png", "wine/test_metric.png"],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs_and_writes_its_outputs(script, tmp_path):
    arguments, outputs = CASES[script]
    out = tmp_path / Path(script).stem
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--out", str(out), *arguments],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert str(out) in completed.stdout
    for name in outputs:
        path = out / name
        assert path.stat().st_size > 0, name
        if name.endswith(".png"):
            assert path.read_bytes().startswith(PNG_HEADER), name
        if name.endswith(".md"):
            assert "|" in path.read_text(), name


def test_every_example_is_covered():
    scripts = {path.name for path in EXAMPLES.glob("*.py") if not path.name.startswith("_")}
    assert scripts == set(CASES)


RESULTS = EXAMPLES / "results"


def test_committed_results_are_complete():
    """Every experiment's committed outputs: the summaries and, per case, tables and figures."""
    for folder in ("planted", "accuracy"):
        summary = RESULTS / folder / "summary.md"
        assert summary.stat().st_size > 0, summary
        cases = [path.parent for path in (RESULTS / folder).glob("*/comparison.json")]
        assert cases, folder
        for case in cases:
            for name in ("comparison.md", "comparison.csv", "objective_vs_time.png",
                         "test_metric.png"):
                assert (case / name).stat().st_size > 0, case / name
            assert case.name in summary.read_text(), (case.name, summary)


def test_readme_summary_matches_the_committed_results():
    """The numbers of the README's claim tables are those the committed summaries hold."""
    import re

    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme.split("## The paper's experiments, reproduced")[1].split("\n## ")[0]
    planted = (RESULTS / "planted" / "summary.md").read_text()
    accuracy = (RESULTS / "accuracy" / "summary.md").read_text()
    claim_one = section.split("**Claim 1")[1].split("**Claim 2")[0]
    for value in re.findall(r"\| (\d+\.\d{6,}) ", claim_one):  # SDP, network, bound
        assert value in planted, value
    # Claim 3's table row by row against the summary's rows of the same case and method
    # (a value found anywhere in the file let swapped optimizers pass)
    summary = {}
    for line in accuracy.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 9 and cells[0] not in ("case", "---"):
            summary[cells[0], cells[1]] = cells
    claim_three = section.split("**Claim 3")[1]
    table = [line for line in claim_three.splitlines() if line.startswith("| ")][1:]
    cases = ["breast-cancer", "wine", "digits", "mnist1d", "digits-cnn", "digits-cnn-match"]
    assert len(table) == len(cases)
    for case, line in zip(cases, table):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        convex = summary[case, "convex native"]
        accuracy_cell, seconds = cells[1].split(", ")
        assert accuracy_cell == convex[8], (case, cells[1])
        assert float(seconds.rstrip(" s")) == pytest.approx(float(convex[7]), rel=0.05), case
        for method, cell in zip(("sgd", "adam", "lbfgs"), cells[2:5]):
            assert cell == summary[case, method][8], (case, method, cell)


def test_a_small_run_never_writes_into_the_committed_results(monkeypatch):
    """--small (and cnn_pooling_digits.py --classes) wrote into examples/results by default,
    replacing the committed 10-class CNN results with a 60-sample binary run."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from _paper import OUTPUT, RESULTS, parser

    arguments = parser("An experiment.", RESULTS / "planted")
    full = arguments.parse_args([])
    assert full.out == RESULTS / "planted" and not full.out_given
    assert arguments.parse_args(["--small"]).out == OUTPUT / "planted"
    given = arguments.parse_args(["--small", "--out", "elsewhere"])
    assert given.out == Path("elsewhere") and given.out_given
