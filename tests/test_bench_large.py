"""The MNIST-scale benchmark script: its cases, its trace of the solver's log, its tables."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

import convexnn
from conftest import planted_teacher

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_large.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_large", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.mark.parametrize("name, shape", [
    ("wide-40x3000", (40, 1, 1, 3000)), ("wide-132x500x7", (132, 1, 1, 500)),
])
def test_wide_cases_have_the_issues_shapes(bench, name, shape):
    problem = bench.make_case(name)
    assert problem.patches.shape == shape
    assert problem.targets.shape[1] == (7 if name.endswith("x7") else 1)


def test_trace_comes_from_the_solvers_round_log(bench):
    t = planted_teacher(n=40, d=4, seed=1)
    problem = convexnn.make_problem(t.X, t.y, beta=0.1)
    handler = bench._Rounds()
    logger = logging.getLogger("convexnn")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        result, _, _ = convexnn.solve(problem, "native", {"engine": "neurons"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert len(handler.points) == result.iterations + 1
    last = handler.points[-1]
    assert last["gap"] <= 1e-6 and last["width"] > 0 and last["seconds"] >= 0
    assert [p["round"] for p in handler.points] == list(range(result.iterations + 1))


def test_targets_speed_ups_tables_and_plots(bench, tmp_path):
    rows = [
        bench.Row("digits-binary", "after", 60000, 784, 1, status="time_limit", time=310.0,
                  peak_memory_gb=1.7, neurons=80, objective=3000.0, relative_gap=0.5,
                  trace=[{"round": 0, "seconds": 4.0, "gap": 1.0, "width": 0, "objective": 1},
                         {"round": 1, "seconds": 300.0, "gap": 0.5, "width": 80,
                          "objective": 1}]),
        bench.Row("wide-40x3000", "before", 40, 3000, 1, status="optimal", time=600.0,
                  relative_gap=1e-8),
        bench.Row("wide-40x3000", "after", 40, 3000, 1, status="optimal", time=20.0,
                  relative_gap=1e-8),
    ]
    bench.judge(rows)
    assert rows[0].target_met is False
    assert rows[2].speedup == pytest.approx(30.0) and rows[2].target_met is True
    stem = tmp_path / "large"
    assert bench.plot(rows, stem) == ["large-digits-binary.png"]
    assert (tmp_path / "large-digits-binary.png").stat().st_size > 1000
    table = bench.markdown(rows, {"date": "today", "machine": "x", "cpus": 2, "threads": 1})
    assert "| digits-binary |" in table and "**no**" in table and "| 30.0 | yes |" in table
    assert "300s: 5.0e-01 (80)" in table
    json.dumps([bench.asdict(row) for row in rows])  # the rows serialise
    assert np.isfinite(rows[2].speedup)


def test_the_judge_keeps_to_the_stated_targets(bench):
    """An 'after' that stalled at gap 0.9 was 'met' because its 'before' stopped at 1.0; a
    CNN row with no SCS time was met; a failed 'before' (no target) showed **no**."""
    def rows(after_gap, before_status="time_limit", before_gap=1.0, before_time=600.0):
        return [bench.Row("wide-40x3000", "before", 40, 3000, 1, status=before_status,
                          time=before_time, relative_gap=before_gap),
                bench.Row("wide-40x3000", "after", 40, 3000, 1, status="optimal", time=7.0,
                          relative_gap=after_gap)]

    stalled = rows(0.9)
    bench.judge(stalled)
    assert stalled[1].target_met is False and stalled[0].target_met is None
    unfinished = rows(1e-8)  # 'before' stopped at its limit: >= 85.7x
    bench.judge(unfinished)
    assert unfinished[1].target_met is True and unfinished[1].speedup_at_least
    table = bench.markdown(unfinished, {"date": "d", "machine": "x", "cpus": 2, "threads": 1})
    assert "| >= 85.7 | yes |" in table
    failed = rows(1e-8, before_status="failed", before_gap=None, before_time=None)
    bench.judge(failed)
    assert failed[0].target_met is None and failed[1].target_met is None  # nothing to compare
    alone = [bench.Row("cnn-12000", "after", 12000, 25, 1, status="optimal", time=38.0,
                       relative_gap=1e-8),
             bench.Row("cnn-12000", "scs", 12000, 25, 1, status="refused")]
    bench.judge(alone)
    assert alone[0].target_met is None and alone[0].speedup is None


@pytest.mark.parametrize("scs_time, met", [(400.0, False), (1200.0, True)])
def test_the_cnn_row_must_be_certified_and_faster_than_scs(bench, scs_time, met):
    rows = [
        bench.Row("cnn-12000", "after", 12000, 25, 1, status="optimal", time=600.0,
                  relative_gap=1e-10),
        bench.Row("cnn-12000", "scs", 12000, 25, 1, status="optimal_inaccurate", time=scs_time,
                  relative_gap=1.3e-6),
    ]
    bench.judge(rows)
    assert rows[0].speedup == pytest.approx(scs_time / 600.0)
    assert rows[0].target_met is met and rows[1].target_met is None


def test_cnn_case_has_the_papers_shape(bench, monkeypatch):
    monkeypatch.setattr(bench, "CNN_IMAGES", 40)
    problem = bench.make_case("cnn-12000")
    # 28 x 28 images, 5 x 5 filters: 24 x 24 outputs pooled in 2 x 2 regions of 12 x 12, the
    # 144 patches of a region held as 26 of the same mean and second moment.
    assert problem.geometry.n_regions == 4 and problem.geometry.pool_area == 144
    assert problem.patches.shape == (40, 4, 26, 25)
    assert set(np.unique(problem.targets)) == {-1.0, 1.0}


def test_a_merged_table_says_when_each_row_was_measured(bench, tmp_path, monkeypatch):
    stem = tmp_path / "large"
    earlier = bench.Row("digits-binary", "after", 60000, 784, 1, status="time_limit")
    stem.with_suffix(".json").write_text(json.dumps({
        "meta": {"date": "2026-01-01 10:00", "commit": "abcdef123456"},
        "rows": [bench.asdict(earlier)],
    }))
    monkeypatch.setattr(bench, "run_in_subprocess", lambda case, variant, limit, threads: bench.Row(
        case, variant, 40, 3000, 1, status="optimal", time=1.0, relative_gap=1e-8))
    monkeypatch.setattr(bench, "git_commit", lambda: "fedcba654321")
    assert bench.main(["--cases", "wide-40x3000", "--merge", "--output", str(stem)]) == 0
    rows = json.loads(stem.with_suffix(".json").read_text())["rows"]
    measured = {(row["case"], row["variant"]): row["measured"] for row in rows}
    assert measured[("digits-binary", "after")] == "2026-01-01 10:00, abcdef1234"
    assert measured[("wide-40x3000", "after")].endswith(", fedcba6543")
    table = stem.with_suffix(".md").read_text()
    assert "| 2026-01-01 10:00, abcdef1234 |" in table and "fedcba6543 |" in table


def test_variants_merge_row_by_row_and_scs_judges_only_the_cnn_row(bench, tmp_path, monkeypatch):
    # adding SCS's (refused) rows to the dense cases must keep their native rows, which
    # --merge dropped case by case, and a refused SCS is no reference for them
    stem = tmp_path / "large"
    earlier = bench.Row("digits-binary", "after", 60000, 784, 1, status="optimal", time=100.0,
                        relative_gap=1e-5, peak_memory_gb=2.0)
    stem.with_suffix(".json").write_text(json.dumps({
        "meta": {"date": "2026-01-01 10:00", "commit": "abcdef123456"},
        "rows": [bench.asdict(earlier)],
    }))
    ran = []

    def refused(case, variant, limit, threads):
        ran.append((case, variant))
        return bench.Row(case, variant, 60000, 784, 1, status="refused")

    monkeypatch.setattr(bench, "run_in_subprocess", refused)
    assert bench.main(["--cases", "digits-binary", "--variants", "scs", "--merge",
                       "--output", str(stem)]) == 0
    assert ran == [("digits-binary", "scs")]
    rows = json.loads(stem.with_suffix(".json").read_text())["rows"]
    assert [(row["variant"], row["status"]) for row in rows] == [("after", "optimal"),
                                                                 ("scs", "refused")]
    assert rows[0]["target_met"] is True  # judged on its own targets, not against SCS

