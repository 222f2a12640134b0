"""The benchmark scripts run end to end on their smallest cases and write their tables."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name: str):
    """The benchmark script ``benchmarks/<name>.py`` as a module (a generator for fixtures)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def bench():
    yield from _script("bench_solvers")


@pytest.fixture(scope="module")
def bench_cv():
    yield from _script("bench_cv")


def test_smallest_case_writes_json_and_markdown(bench, tmp_path, capsys):
    stem = tmp_path / "solvers"
    assert bench.main(["--cases", "100x20", "--solvers", "native", "scs", "mosek",
                       "--output", str(stem)]) == 0
    document = json.loads(stem.with_suffix(".json").read_text())
    rows = {row["solver"]: row for row in document["rows"]}
    assert set(rows) == {"native", "scs", "mosek"}
    native, scs = rows["native"], rows["scs"]
    assert native["status"] == "optimal"
    # SCS is first order: its network may miss tol = 1e-6, and then says so.
    assert scs["status"] in ("optimal", "optimal_inaccurate")
    assert (scs["status"] == "optimal") == (scs["relative_gap"] <= 1e-6)
    # The network's gap and width after polishing, never worse than before.
    for row in (native, scs):
        assert row["relative_gap"] <= row["unpolished_gap"] * (1 + 1e-6)
        assert row["neurons"] <= row["unpolished_neurons"] and row["polish_time"] >= 0
    assert scs["time_ratio_to_scs"] == 1
    assert native["time_ratio_to_scs"] == pytest.approx(native["time"] / scs["time"])
    # both certified by the same oracle: each objective lies above the other's bound
    assert native["relative_gap"] <= 1e-6
    assert native["lower_bound"] <= scs["objective"] and scs["lower_bound"] <= native["objective"]
    assert native["peak_memory_gb"] > 0
    assert rows["mosek"]["status"] in ("unusable", "optimal")
    markdown = stem.with_suffix(".md").read_text()
    assert "| 100x20 | 100 | 20 | native (ipm) | optimal |" in markdown
    assert "time / SCS" in markdown and markdown in capsys.readouterr().out


def test_cv_benchmark_on_a_tiny_case_writes_json_and_markdown(bench_cv, tmp_path, capsys):
    stem = tmp_path / "cv"
    assert bench_cv.main(["--cases", "wine", "--n-betas", "3", "--folds", "2",
                          "--output", str(stem)]) == 0
    document = json.loads(stem.with_suffix(".json").read_text())
    rows = document["rows"]
    # the squared loss, and wine's natural smooth loss (three classes: cross-entropy)
    assert [row["loss"] for row in rows] == ["squared", "cross-entropy"]
    for row in rows:
        assert row["case"] == "wine" and (row["n"], row["d"], row["classes"]) == (178, 13, 3)
        assert (row["n_betas"], row["folds"]) == (3, 2)
        # the same grid and folds give the same choice and score
        assert row["same_beta"] and row["cv_beta"] == row["grid_beta"]
        assert row["same_score"] and row["cv_score"] == pytest.approx(row["grid_score"])
        assert row["ratio"] == pytest.approx(row["grid_time"] / row["cv_time"])
        assert row["cpu_ratio"] == pytest.approx(row["grid_cpu"] / row["cv_cpu"])
        assert row["beta_max"] > row["cv_beta"] > 0 and row["skipped_points"] == 0
        # the refit's certified optimum, and Clarabel's solve of the same problem
        assert row["refit_gap"] <= 1e-6 and row["refit_width"] > 0
        assert row["conic_status"] == "optimal"
        assert row["conic_objective"] == pytest.approx(row["refit_objective"], rel=1e-5)
        # what the fits add to the process: something, and far less than a GB here
        for peak in (row["cv_memory_added_gb"], row["grid_memory_added_gb"]):
            assert 0 <= peak < 0.5
    markdown = stem.with_suffix(".md").read_text()
    assert "| wine | squared | 178 x 13 | 3 | 3 x 2 |" in markdown
    assert "| wine | cross-entropy | 178 x 13 | 3 | 3 x 2 |" in markdown
    assert "GridSearchCV / CV" in markdown and markdown in capsys.readouterr().out
