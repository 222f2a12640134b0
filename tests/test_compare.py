"""convexnn.comparison and ``convexnn compare``: the convex optimum vs backprop, side by side.

Tiny problems only (planted n=40, d=4; iris subsets), tight conic tolerances,
2 seeds and a few dozen epochs, so the whole module runs in seconds.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_iris

from conftest import planted_teacher, tight_options
from convexnn import (
    ConvexNNWarning,
    SolverFailedError,
    UnknownSolverError,
    ValidationError,
    solvers,
)
from convexnn.baselines import BackpropPolyClassifier
from convexnn.cli import main
from convexnn.comparison import COLUMNS, Comparison, compare, default_max_samples
from convexnn.comparison._records import time_to_target
from convexnn.datasets import DATASETS
from convexnn.estimators import ConvexPolyClassifier

PNG_HEADER = b"\x89PNG\r\n\x1a\n"
OPTIMIZERS = ("sgd", "adam", "lbfgs")
SEEDS = 2
EPOCHS = 30


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, np.ndarray]:
    teacher = planted_teacher(n=40, d=4, m=3, seed=1)
    return teacher.X, teacher.y


@pytest.fixture(scope="module")
def comparison(planted) -> Comparison:
    """clarabel (tight) and an unlicensed solver; three optimizers x 2 seeds."""
    return compare(
        planted,
        task="regression",
        solvers=("clarabel", "mosek"),
        optimizers=OPTIMIZERS,
        seeds=SEEDS,
        epochs=EPOCHS,
        solver_options=tight_options("clarabel"),
        progress=False,
    )


def rows(comparison: Comparison, **where) -> list[dict]:
    return [r for r in comparison.records if all(r[k] == v for k, v in where.items())]


# -- the table -------------------------------------------------------------------------
def test_one_row_per_method_and_seed(comparison):
    table = comparison.table()
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 2 + len(OPTIMIZERS) * SEEDS
    for optimizer in OPTIMIZERS:
        assert sorted(r["seed"] for r in rows(comparison, method=optimizer)) == [0, 1]
    assert all(r["seed"] is None for r in rows(comparison, kind="convex"))
    ok = table[table["status"] != "failed"]
    assert len(ok) == 1 + len(OPTIMIZERS) * SEEDS
    for column in ("objective", "train_metric", "test_metric", "time", "neurons"):
        assert np.all(np.isfinite(ok[column].astype(float))), column
    assert (ok["time"] > 0).all()
    backprop = table[table["kind"] == "backprop"]
    assert (backprop["epochs"] == EPOCHS).all()
    assert (backprop["neurons"] == 2 * (4 + 1)).all()  # the default width 2 C (d + 1)


def test_summary_has_one_row_per_method(comparison):
    summary = comparison.summary()
    assert list(summary["method"]) == ["clarabel", "mosek", *OPTIMIZERS]
    assert list(summary["runs"]) == [1, 1, SEEDS, SEEDS, SEEDS]


def test_summary_leaves_diverged_runs_out_of_objectives_and_metrics(comparison):
    """A diverged run's objective is its best record's, of a network it then lost: it
    was the "best objective" and entered the median and the mean test metric."""
    import dataclasses

    records = [dict(r) for r in comparison.records]
    first, second = (r for r in records if r["method"] == OPTIMIZERS[0])
    first.update(status="diverged", objective=1e-9, test_metric=-100.0)
    row = dataclasses.replace(comparison, records=records).summary().set_index("method").loc[
        OPTIMIZERS[0]]
    assert row["runs"] == SEEDS and row["diverged"] == 1
    assert row["best_objective"] == row["median_objective"] == second["objective"]
    assert row["mean_test_metric"] == second["test_metric"]
    markdown = dataclasses.replace(comparison, records=records).to_markdown()
    assert "neither failed nor diverged" in markdown
    # "reached / runs" counts the runs the median is over: the diverged one is not
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {OPTIMIZERS[0]} "))
    assert "/1)" in line and "/2)" not in line, line


def test_the_report_records_the_threads_backprop_had(comparison):
    """Equal wall-time budgets are comparable only with the thread counts known ("auto":
    one thread on a problem this small)."""
    assert comparison.settings["backprop_threads"] == 1
    assert comparison.to_dict()["settings"]["backprop_threads"] == 1


def test_convex_row_is_certified(comparison):
    (row,) = rows(comparison, method="clarabel")
    assert row["status"] == "optimal" and row["solver"] == "clarabel"
    assert row["relative_gap"] < 1e-6
    assert comparison.lower_bound == row["lower_bound"]
    assert comparison.best_objective == row["objective"]


def test_convex_optimum_bounds_every_backprop_run(comparison):
    """Objective (a) of every run >= the certified optimum (within the certified gap)."""
    (convex,) = rows(comparison, method="clarabel")
    gap = convex["objective"] - convex["lower_bound"]
    for run in comparison.runs:
        assert run.objective_kind == "convex"
        assert run.final_convex_objective >= comparison.lower_bound - 1e-9 * abs(
            comparison.lower_bound
        )
        # ... so no run beats the convex network by more than the certified gap.
        assert run.final_convex_objective >= convex["objective"] - gap - 1e-9
    for row in rows(comparison, kind="backprop"):
        assert row["relative_excess"] >= 0
        assert row["objective"] == next(
            r.final_convex_objective
            for r in comparison.runs
            if (r.optimizer, r.seed) == (row["method"], row["seed"])
        )


def test_histories_are_kept_per_run(comparison):
    assert set(comparison.histories) == {(o, s) for o in OPTIMIZERS for s in range(SEEDS)}
    for history in comparison.histories.values():
        assert history.epoch[0] == 0 and history.epoch[-1] == EPOCHS
        assert np.all(np.diff(history.wall_time) >= 0)
        assert np.all(np.isfinite(history.convex_objective))


@pytest.mark.skipif(solvers.info("mosek").usable, reason="MOSEK is licensed here")
def test_an_unlicensed_solver_gives_a_failed_row(comparison):
    (mosek,) = rows(comparison, method="mosek")
    assert mosek["status"] == "failed"
    assert "SolverNotLicensedError" in mosek["error"] and "license" in mosek["error"].lower()
    assert math.isnan(mosek["objective"]) and math.isnan(mosek["lower_bound"])


def test_an_unknown_solver_name_is_refused_before_anything_runs(planted):
    """A typo ran every other method, then became a failed row (and the CLI exited 0)."""
    with pytest.raises(UnknownSolverError, match="unknown solver 'natve'; registered"):
        compare(planted, task="regression", solvers=("clarabel", "natve"),
                optimizers=("adam",), progress=False)


@pytest.fixture
def failing_cvxopt(monkeypatch):
    def fail(self, problem, *, warm_start=None, **options):
        raise SolverFailedError("cvxopt broke down")

    monkeypatch.setattr(type(solvers.get("cvxopt")), "solve", fail)


def test_failing_solver_is_logged_not_raised(planted, caplog, failing_cvxopt):
    with caplog.at_level("WARNING", logger="convexnn"):
        result = compare(planted, task="regression", solvers=("scs", "cvxopt"),
                         optimizers=(), solver_options=tight_options("scs"), progress=False)
    assert [r["status"] for r in result.records] == ["optimal", "failed"]
    assert "cvxopt broke down" in result.records[1]["error"]
    assert any("cvxopt" in message for message in caplog.messages)


def test_a_comparison_whose_solvers_all_failed_says_so(planted, failing_cvxopt):
    result = compare(planted, task="regression", solvers=("cvxopt",),
                     optimizers=("adam",), seeds=1, epochs=2, progress=False)
    assert "none (no convex solver succeeded)" in result.to_markdown()


def test_diverged_optimizer_is_recorded_and_the_comparison_goes_on(planted):
    from sklearn.exceptions import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match="backprop sgd .* diverged"):
        result = compare(planted, task="regression", solvers=(), optimizers=("sgd", "lbfgs"),
                         seeds=1, epochs=20, backprop_options={"lr": 1e6}, progress=False)
    sgd, lbfgs = result.records
    assert sgd["status"] == "diverged" and "its record of lowest training objective" in sgd["error"]
    assert np.isfinite(sgd["objective"])  # its record of lowest objective, never NaN
    assert lbfgs["status"] in ("completed", "diverged")
    assert math.isnan(result.lower_bound)  # no convex row: no reference, still a table
    assert "none (no convex solver was run)" in result.to_markdown()
    summary = result.summary().set_index("method")
    assert summary.loc["sgd", "lr"] == 1e6  # the rate that diverged, not a blank


# -- files -----------------------------------------------------------------------------
def test_save_writes_table_json_and_plots(comparison, tmp_path):
    paths = comparison.save(tmp_path / "out")
    assert {p.name for p in paths.values()} == {
        "comparison.md", "comparison.csv", "comparison.json", "objective_vs_time.png",
        "test_metric.png",
    }
    for name in ("objective_vs_time", "test_metric"):
        content = paths[name].read_bytes()
        assert len(content) > 1000 and content.startswith(PNG_HEADER), name
    table = pd.read_csv(paths["csv"])
    assert len(table) == len(comparison.records) and list(table.columns) == list(COLUMNS)
    rows = paths["csv"].read_text().splitlines()[1:]  # seeds and epochs as integers, not 0.0
    backprop = [row.split(",") for row in rows if row.startswith("backprop")]
    seed, epochs = list(COLUMNS).index("seed"), list(COLUMNS).index("epochs")
    assert all(row[seed].isdigit() and row[epochs].isdigit() for row in backprop)
    document = json.loads(paths["json"].read_text())  # strict JSON: NaN written as null
    assert len(document["records"]) == len(comparison.records)
    assert document["optimum"]["lower_bound"] == pytest.approx(comparison.lower_bound)
    assert len(document["histories"]) == len(OPTIMIZERS) * SEEDS
    markdown = paths["markdown"].read_text()
    assert markdown == comparison.to_markdown()
    assert "| clarabel" in markdown and "| failed" in markdown and "certified optimum" in markdown


# -- same data, same encoding as the estimators --------------------------------------
def test_classification_rows_match_the_estimators():
    """Pre-split, pre-scaled data: the rows equal what the estimators compute themselves."""
    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    train, test = order[:45], order[45:75]
    data = (X[train], y[train], X[test], y[test])
    result = compare(data, solvers=("clarabel",), optimizers=("adam",), seeds=[3], epochs=25,
                     standardize=False, solver_options=tight_options("clarabel"),
                     progress=False)
    assert result.settings["task"] == "classification" and result.settings["n_outputs"] == 3
    convex, backprop = result.records
    model = ConvexPolyClassifier(beta=0.1, solver="clarabel",
                                 solver_options=tight_options("clarabel")).fit(X[train], y[train])
    assert convex["objective"] == pytest.approx(model.result_.objective, rel=1e-6)
    assert convex["test_metric"] == pytest.approx(model.score(X[test], y[test]))
    baseline = BackpropPolyClassifier(beta=0.1, optimizer="adam", epochs=25, random_state=3)
    baseline.fit(X[train], y[train])
    assert backprop["objective"] == pytest.approx(baseline.run_.final_convex_objective, rel=1e-9)
    assert backprop["test_metric"] == pytest.approx(baseline.score(X[test], y[test]))


def test_max_samples_caps_the_training_set_only():
    result = compare("iris", solvers=(), optimizers=("adam",), seeds=1, epochs=5,
                     max_samples=30, progress=False)
    settings = result.settings
    assert (settings["n_train"], settings["n_train_available"], settings["n_test"]) == (30, 112, 38)


def test_a_weight_decay_comparison_says_what_its_objectives_are():
    """The table scored the rescaled network, not the one trained, without saying so."""
    result = compare("iris", solvers=(), optimizers=("adam",), seeds=1, epochs=5,
                     objective="weight-decay", progress=False)
    assert "rows scaled to unit norm, a different function" in result.to_markdown()
    plain = compare("iris", solvers=(), optimizers=("adam",), seeds=1, epochs=5, progress=False)
    assert "rows scaled to unit norm" not in plain.to_markdown()


def test_a_batch_size_is_for_the_first_order_optimizers_beside_lbfgs():
    """With L-BFGS among the optimizers (the default) any batch_size was refused."""
    def objectives(batch_size):
        result = compare("wine", solvers=(), optimizers=("sgd", "lbfgs"), seeds=1, epochs=5,
                         backprop_options={"batch_size": batch_size}, progress=False)
        assert all(run.stop_reason != "failed" for run in result.runs)
        return {run.optimizer: run.final_objective for run in result.runs}

    small, whole = objectives(16), objectives(None)
    assert small["lbfgs"] == whole["lbfgs"]  # full batch either way
    assert small["sgd"] != whole["sgd"]  # mini-batches: other steps


def test_report_cells_of_degenerate_runs_read_well():
    """A diverged run's R^2 printed as -74904539342309664.0000; a comparison without
    backprop said "epochs " and nothing after it."""
    from convexnn.comparison._report import _fmt_metric, _fmt_spread

    assert _fmt_metric(0.973684) == "0.9737" and _fmt_metric(-74904539342309664.0) == "-7.49e+16"
    assert _fmt_metric(float("nan")) == "" and _fmt_spread(-7.5e16, 1e15) == "-7.5e+16 ± 1e+15"
    convex_only = compare("iris", solvers=("native",), optimizers=(), seeds=1, progress=False)
    assert "objective 'convex', no backprop run" in convex_only.to_markdown()


def test_default_max_samples_follows_the_nonzero_budget():
    assert default_max_samples(64, 10) == 100  # digits: the floor
    assert default_max_samples(40, 10) == 237  # mnist1d
    assert default_max_samples(30, 1) == 4162  # breast cancer: no cap in effect


def test_torch_threads_are_restored(planted):
    before = torch.get_num_threads()
    compare(planted, task="regression", solvers=(), optimizers=("adam",), seeds=1, epochs=3,
            threads=1, progress=False)
    assert torch.get_num_threads() == before


# -- bad arguments: clear errors before anything runs ------------------------------------
@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"optimizers": ("adam", "newton")}, ["optimizers", "newton"]),
        ({"optimizers": (), "solvers": ()}, ["nothing to compare"]),
        ({"seeds": 0}, ["seeds"]),
        ({"seeds": []}, ["seeds"]),
        ({"beta": -1.0}, ["beta"]),
        ({"activation": "tanh"}, ["activation"]),
        ({"loss": "nope"}, ["loss"]),
        ({"width": 0}, ["width"]),
        ({"epochs": 1.5}, ["epochs"]),
        ({"objective": "mse"}, ["objective"]),
        ({"max_samples": 0}, ["max_samples"]),
        ({"max_samples": "some"}, ["max_samples"]),
        ({"solver_options": "fast"}, ["solver_options"]),
        ({"solver_options": {"time_limit": -1}, "solvers": ("scs",)}, ["time_limit"]),
        ({"solver_options": {"time_limit": -1}}, ["time_limit"]),
        ({"backprop_options": {"momentum": 0.5}}, ["backprop_options", "momentum"]),
        ({"backprop_options": {"schedule": "warp"}}, ["schedule"]),
        ({"solvers": ("scs", 3)}, ["solvers"]),
        ({"task": "ranking"}, ["task"]),
        ({"threads": 0}, ["threads"]),
        ({"progress": "yes"}, ["progress"]),
        ({"tune_lr": "yes"}, ["tune_lr"]),
        ({"tune_lr": True, "backprop_options": {"lr": 0.1}}, ["tune_lr", "lr"]),
        ({"budget": -1.0}, ["budget"]),
        ({"budget": "soon"}, ["budget"]),
        ({"budget": 1.0, "epochs": 10}, ["budget", "epochs"]),
        ({"budget": 1.0, "backprop_options": {"time_limit": 2.0}}, ["budget", "time_limit"]),
        ({"budget": 1.0, "backprop_options": {"schedule": "cosine"}}, ["budget", "schedule"]),
        ({"conv": 3}, ["conv"]),
        ({"conv": {"kernel": 3}}, ["conv", "kernel"]),
        ({"conv": {"filter_size": 0, "image_shape": (1, 2, 2)}}, ["filter_size"]),
        ({"conv": {"filter_size": 3}}, ["conv", "image_shape"]),  # arrays carry no shape
    ],
)
def test_bad_arguments_raise_before_running(planted, kwargs, words):
    with pytest.raises(ValueError) as info:
        compare(planted, **{"task": "regression", "progress": False, **kwargs})
    assert isinstance(info.value, ValidationError) or "option" in str(info.value)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    "data, words",
    [
        ("no-such-data", ["unknown data set"]),
        (42, ["data must be"]),
        ((np.zeros((5, 2)), np.zeros(4)), ["y has 4 rows", "5 samples"]),
        ((np.zeros((6, 2)), np.zeros(6), np.zeros((3, 3)), np.zeros(3)), ["features"]),
    ],
)
def test_bad_data_raises(data, words):
    with pytest.raises(ValidationError) as info:
        compare(data, progress=False)
    for word in words:
        assert word in str(info.value)


def test_regression_with_a_classification_loss_is_refused(planted):
    with pytest.raises(ValidationError, match="loss 'hinge' needs class labels"):
        compare(planted, task="regression", loss="hinge", progress=False)


# -- the package ------------------------------------------------------------------------
def test_import_loads_neither_matplotlib_nor_pandas():
    """The namespace is lazy: scikit-learn (which imports pandas) loads on first use."""
    code = ("import convexnn.comparison, sys; "
            "print('matplotlib' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out == ["False", "False"]


def test_running_a_comparison_and_its_tables_do_not_load_matplotlib():
    """Only the figures need matplotlib."""
    code = (
        "import sys, numpy as np\n"
        "from convexnn.comparison import compare\n"
        "X = np.random.default_rng(0).normal(size=(20, 3))\n"
        "result = compare((X, X[:, 0]), task='regression', solvers=(), optimizers=('adam',),\n"
        "                 seeds=1, epochs=2, progress=False)\n"
        "result.summary(), result.to_markdown(), result.to_dict()\n"
        "print('matplotlib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True,
                         check=True, timeout=300).stdout.split()
    assert out == ["False"]


# -- the command line ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory):
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    frame = pd.DataFrame(X, columns=["sepal_length", "sepal_width", "petal_length", "petal_width"])
    frame.insert(2, "label", names)
    path = tmp_path_factory.mktemp("data") / "iris.csv"
    frame.iloc[::2].to_csv(path, index=False)
    return path


def test_cli_compare_on_a_data_file(iris_csv, tmp_path, capsys):
    out = tmp_path / "results"
    code = main([
        "compare", "--data", str(iris_csv), "--target", "label", "--solvers", "clarabel,mosek",
        "--optimizers", "adam,lbfgs", "--seeds", "2", "--epochs", "15", "--out", str(out),
        "--no-progress",
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for name in ("comparison.md", "comparison.csv", "comparison.json", "objective_vs_time.png",
                 "test_metric.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "objective_vs_time.png").read_bytes().startswith(PNG_HEADER)
    assert "| clarabel" in captured.out and "| adam" in captured.out
    assert f"to {out}" in captured.out
    table = pd.read_csv(out / "comparison.csv")
    assert len(table) == 2 + 2 * 2
    assert table.loc[table["method"] == "clarabel", "status"].item() == "optimal"


@pytest.mark.parametrize("name", DATASETS)
def test_cli_compare_runs_on_every_embedded_data_set(name, tmp_path, capsys):
    """The issue's acceptance check: ``convexnn compare`` on each embedded data set."""
    code = main([
        "compare", "--dataset", name, "--solvers", "native", "--optimizers", "adam",
        "--seeds", "1", "--epochs", "5", "--max-samples", "60", "--out", str(tmp_path),
        "--no-progress",
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert list(table["method"]) == ["native", "adam"]
    assert table.loc[table["method"] == "native", "status"].item() == "optimal"
    assert table["objective"].notna().all() and table["test_metric"].notna().all()
    convex, backprop = table["objective"]
    assert convex <= backprop


def test_cli_compare_on_an_embedded_data_set(tmp_path, capsys):
    code = main([
        "compare", "--dataset", "iris", "--solvers", "scs", "--optimizers", "adam", "--seeds",
        "0,5", "--epochs", "10", "--max-samples", "40", "--beta", "0.05", "--activation",
        "quadratic", "--out", str(tmp_path), "--no-progress",
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads((tmp_path / "comparison.json").read_text())
    settings = document["settings"]
    assert settings["n_train"] == 40 and settings["beta"] == 0.05 and settings["seeds"] == [0, 5]
    assert settings["activation_coefficients"] == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "argv",
    [
        ["compare"],
        ["compare", "--dataset", "no-such-data"],
        ["compare", "--dataset", "iris", "--data", "x.csv"],
        ["compare", "--dataset", "iris", "--optimizers", "adam,newton"],
        ["compare", "--dataset", "iris", "--beta", "-1"],
        ["compare", "--dataset", "iris", "--beta", "lots"],
        ["compare", "--dataset", "iris", "--seeds", "many"],
        ["compare", "--dataset", "iris", "--activation", "1,2"],
        ["compare", "--dataset", "iris", "--max-samples", "0"],
        ["compare", "--dataset", "iris", "--target", "label"],
        ["compare", "--data", "/no/such/file.csv"],
        ["compare", "--dataset", "iris", "--time-limit", "-5", "--solvers", "scs"],
        ["compare", "--dataset", "iris", "--budget", "soon"],
        ["compare", "--dataset", "iris", "--pool-size", "2"],
        ["compare", "--dataset", "iris", "--filter-size", "3"],  # iris has no image shape
    ],
)
def test_cli_bad_arguments_give_one_line_and_exit_code_2(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convexnn: error:"), captured.err


# -- learning-rate tuning -------------------------------------------------------------------
@pytest.fixture(scope="module")
def tuned(planted) -> Comparison:
    return compare(planted, task="regression", solvers=("clarabel",), optimizers=OPTIMIZERS,
                   seeds=SEEDS, epochs=EPOCHS, tune_lr=True,
                   solver_options=tight_options("clarabel"), progress=False)


def test_tuning_reports_the_grid_and_the_chosen_rate(tuned):
    tuning = tuned.settings["tuning"]
    assert set(tuning) == set(OPTIMIZERS)
    for optimizer in ("sgd", "adam"):
        search = tuning[optimizer]
        rates = [trial["lr"] for trial in search["trials"]]
        assert len(rates) >= 5 and np.log10(max(rates) / min(rates)) >= 4
        usable = [t for t in search["trials"] if not t["diverged"]]
        best = min(usable, key=lambda t: t["objective"])
        assert search["lr"] == best["lr"] and search["seed"] == 0
        for row in rows(tuned, method=optimizer):
            assert row["lr"] == search["lr"]  # every seed at the chosen rate
        assert tuned.settings["lr"][optimizer] == search["lr"]
    assert not tuning["lbfgs"]["tuned"] and "line search" in tuning["lbfgs"]["note"]
    markdown = tuned.to_markdown()
    assert "### Learning rates" in markdown and f"**{tuning['adam']['lr']:.3g}**" in markdown
    document = json.loads(json.dumps(tuned.to_dict(), allow_nan=False))
    first = document["settings"]["tuning"]["sgd"]["trials"][0]
    assert first["lr"] == tuning["sgd"]["trials"][0]["lr"]
    assert pd.DataFrame(tuned.records)["lr"].notna().sum() == len(OPTIMIZERS) * SEEDS


def test_tuned_runs_are_the_runs_at_the_chosen_rate(tuned, planted):
    """The rows equal plain runs at the reported rate: the search only picks the rate."""
    rate = tuned.settings["tuning"]["adam"]["lr"]
    plain = compare(planted, task="regression", solvers=(), optimizers=("adam",), seeds=SEEDS,
                    epochs=EPOCHS, backprop_options={"lr": rate}, progress=False)
    assert [r["objective"] for r in plain.records] == [
        r["objective"] for r in rows(tuned, method="adam")
    ]


# -- budgets and time to target ---------------------------------------------------------------
def test_budget_stops_every_optimizer_within_ten_percent_of_it(planted):
    budget = 0.6
    result = compare(planted, task="regression", solvers=(), optimizers=OPTIMIZERS, seeds=1,
                     budget=budget, progress=False)
    assert result.settings["budget_seconds"] == budget and result.settings["epochs"] is None
    for row in result.records:
        assert row["status"] == "time_limit", row
        assert abs(row["time"] - budget) <= 0.1 * budget, row
    for run in result.runs:  # records spread over the budget, not only at its ends
        assert len(run.history) >= 10
    assert "budget 0.6 s of training per run" in result.to_markdown()


def test_budget_match_is_the_convex_solve_time(planted):
    result = compare(planted, task="regression", solvers=("clarabel",), optimizers=("adam",),
                     seeds=1, budget="match", solver_options=tight_options("clarabel"),
                     progress=False)
    convex, adam = result.records
    assert result.settings["budget_seconds"] == convex["time"]
    assert abs(adam["time"] - convex["time"]) <= 0.1 * convex["time"] + 0.01
    assert "the convex solve's wall time" in result.to_markdown()


def test_time_to_target_is_never_when_the_target_is_not_reached(comparison, planted):
    assert time_to_target([0.0, 1.0, 2.0], [10.0, 1.5, 1.005], 1.0, 1e-2) == 2.0
    assert time_to_target([0.0, 1.0], [10.0, 1.5], 1.0, 1e-2) == math.inf
    assert math.isnan(time_to_target([0.0], [1.0], math.nan, 1e-2))
    short = compare(planted, task="regression", solvers=("clarabel",), optimizers=("sgd",),
                    seeds=1, epochs=1, solver_options=tight_options("clarabel"), progress=False)
    convex, sgd = short.records
    assert convex["time_to_1pct"] == convex["time_to_0.1pct"] == convex["time"]
    assert sgd["time_to_1pct"] == sgd["time_to_0.1pct"] == math.inf
    markdown = short.to_markdown()
    assert "never (0/1)" in markdown
    document = short.to_dict()
    assert document["records"][1]["time_to_1pct"] == "never"
    # Runs that get there: the first record within the target, checked against the history.
    lower = comparison.lower_bound
    for run in comparison.runs:
        row = next(r for r in comparison.records
                   if (r["method"], r["seed"]) == (run.optimizer, run.seed))
        values = np.asarray(run.history.convex_objective)
        hits = np.flatnonzero(values <= lower + 1e-2 * abs(lower))
        expected = run.history.wall_time[hits[0]] if len(hits) else math.inf
        assert row["time_to_1pct"] == expected


# -- the convolutional variant ----------------------------------------------------------------
def test_compare_runs_the_convolutional_variant_end_to_end(tmp_path):
    """Small 6x6 images, average pooling over 2x2 regions; convex and backprop CNN rows."""
    rng = np.random.default_rng(4)
    images = rng.normal(size=(50, 6, 6))
    labels = (images[:, 1:4, 1:4].sum(axis=(1, 2)) > 0).astype(int)
    result = compare((images.reshape(50, 36), labels), task="classification",
                     solvers=("clarabel",), optimizers=("adam", "lbfgs"), seeds=1, epochs=20,
                     conv={"filter_size": 3, "pool_size": 2, "image_shape": (1, 6, 6)},
                     solver_options=tight_options("clarabel"), progress=False)
    settings = result.settings
    assert settings["variant"] == "convolutional" and settings["conv"]["pool_size"] == [2, 2]
    assert settings["width"] == 2 * 1 * 4 * (9 + 1)  # 2 C R (h + 1)
    convex, adam, lbfgs = result.records
    assert convex["status"] == "optimal" and convex["relative_gap"] < 1e-6
    assert result.models["clarabel"].network_.geometry.n_regions == 4
    for row, run in zip((adam, lbfgs), result.runs):
        assert row["kind"] == "backprop" and row["status"] == "completed"
        assert run.geometry is not None and run.geometry.n_regions == 4
        assert row["objective"] >= result.lower_bound
        X_train = result.models["clarabel"].network_  # the same data for both
        assert run.network.geometry == X_train.geometry
    assert "convolutional (3x3 filters, stride 1x1, 2x2 average pooling)" in result.to_markdown()
    result.save(tmp_path)  # tables and figures for CNN rows too
    assert (tmp_path / "objective_vs_time.png").stat().st_size > 1000


def test_cli_compare_convolutional_digits(tmp_path, capsys):
    code = main([
        "compare", "--dataset", "digits", "--filter-size", "3", "--pool-size", "3",
        "--solvers", "native", "--optimizers", "adam", "--seeds", "1", "--epochs", "3",
        "--max-samples", "40", "--out", str(tmp_path), "--no-progress",
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads((tmp_path / "comparison.json").read_text())
    assert document["settings"]["conv"]["image_shape"] == [1, 8, 8]
    assert [r["method"] for r in document["records"]] == ["native", "adam"]
    assert "3x3 average pooling" in captured.out


# -- max_samples="auto" -------------------------------------------------------------------------
def test_max_samples_auto_keeps_every_sample_for_native():
    """Digits (1347 training samples, 10 classes): native takes them all, and says so."""
    result = compare("digits", solvers=("native",), optimizers=(), progress=False,
                     solver_options={"engine": "neurons", "max_iter": 1})  # the size, not the fit
    settings = result.settings
    assert settings["n_train"] == settings["n_train_available"] == 1347
    assert result.models["native"].network_.n_features == 64  # it trained on them
    assert "all 1347 training samples" in settings["sample_cap"]
    assert "caps only for conic back-ends" in result.to_markdown()


def test_max_samples_auto_caps_for_scs(monkeypatch, tmp_path, capsys):
    """The same data with SCS: capped to 100, and the report says for which back-end and why.

    The solve is replaced by a stub that records what SCS would have been given (a real
    SCS solve on these 100 samples takes a minute; the rows' solves are tested above).
    """
    from convexnn.comparison import _compare
    from convexnn.comparison._records import new_record

    seen = {}

    def stub(name, data, plan):
        seen[name] = data.X_train.shape
        return new_record("convex", name), None

    monkeypatch.setattr(_compare, "run_convex", stub)
    code = main(["compare", "--dataset", "digits", "--solvers", "native,scs", "--optimizers", "",
                 "--out", str(tmp_path), "--no-progress"])
    captured = capsys.readouterr()
    # The stub's rows are failed ones, and a compare whose every method failed exits with 1
    assert code == 1 and "every method failed" in captured.err, captured.err
    assert seen == {"native": (100, 64), "scs": (100, 64)}  # one data set for every method
    settings = json.loads((tmp_path / "comparison.json").read_text())["settings"]
    assert settings["n_train"] == 100 and settings["n_train_available"] == 1347
    for words in ("100 of 1347 training samples", "conic back-end(s) scs", "nonzeros"):
        assert words in settings["sample_cap"] and words in captured.out


def test_sample_cap_rules():
    from convexnn.comparison._data import choose_sample_cap

    per_sample = 65**2 * 10  # digits
    assert choose_sample_cap("auto", 1347, per_sample, []).cap is None
    assert choose_sample_cap("auto", 1347, per_sample, ["scs"]).cap == 100
    assert choose_sample_cap("auto", 50, per_sample, ["scs"]).cap is None  # the floor of 100
    assert choose_sample_cap("auto", 426, 31**2, ["scs"]).cap is None  # fits the budget
    assert choose_sample_cap(60, 1347, per_sample, []).cap == 60  # a given cap always applies
    assert choose_sample_cap(None, 1347, per_sample, ["scs"]).cap is None


def test_image_arrays_are_taken_as_they_are_and_give_the_conv_default_shape():
    """(n, H, W) images need no flattening, and their shape is conv's default image_shape."""
    rng = np.random.default_rng(4)
    images = rng.normal(size=(50, 6, 6))
    labels = (images[:, 1:4, 1:4].sum(axis=(1, 2)) > 0).astype(int)
    common = dict(task="classification", solvers=("native",), optimizers=(), progress=False)
    given = compare((images, labels), conv={"filter_size": 3, "pool_size": 2}, **common)
    flat = compare((images.reshape(50, 36), labels),
                   conv={"filter_size": 3, "pool_size": 2, "image_shape": (1, 6, 6)}, **common)
    assert given.settings["conv"] == flat.settings["conv"]
    assert given.records[0]["objective"] == pytest.approx(flat.records[0]["objective"], rel=1e-12)


@pytest.mark.parametrize("isatty, progress, shown", [
    (True, None, True), (False, None, False), (True, False, False), (False, True, True),
])
def test_the_progress_bar_follows_the_terminal_by_default(monkeypatch, isatty, progress,
                                                          shown):
    # the bar got the unresolved None (shown never) when stderr was a terminal
    import io

    import convexnn.comparison._compare as compare_module

    class Stderr(io.StringIO):
        def isatty(self):
            return isatty

    seen = []
    real = compare_module.progress_bar
    monkeypatch.setattr(sys, "stderr", Stderr())
    monkeypatch.setattr(compare_module, "progress_bar",
                        lambda total, enabled: seen.append(enabled) or real(total, False))
    compare("iris", solvers=("native",), optimizers=(), seeds=1, progress=progress)
    assert seen == [shown]


def test_the_report_says_regression_targets_are_not_scaled(comparison):
    # backprop stalls on raw offset targets (no bias); the report said only "standardised"
    assert "features standardised, targets as given (not scaled)" in comparison.to_markdown()
    iris = compare("iris", solvers=("native",), optimizers=(), seeds=1, progress=False)
    assert "targets as given" not in iris.to_markdown()


def test_budget_match_without_a_solver_is_refused_before_anything_runs():
    # it logged a warning and ran every optimizer for 1000 epochs instead
    with pytest.raises(ValidationError, match="budget='match' .* solvers is empty"):
        compare("iris", solvers=(), optimizers=("adam",), seeds=1, budget="match",
                progress=False)


# -- arguments and data that used to mislead ------------------------------------------
def test_task_auto_looks_at_both_parts_and_a_single_value_is_a_regression():
    """A constant real target read as one class ("a classifier needs 2 classes"), and
    integral y_train beside real y_test as classes ("use a regressor")."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    options = dict(solvers=("native",), optimizers=("lbfgs",), seeds=1, epochs=3,
                   progress=False)
    assert compare((X, np.full(40, 2.0)), **options).settings["task"] == "regression"
    split = (X[:30], np.round(3 * X[:30, 0]), X[30:], 3 * X[30:, 0])
    result = compare(split, test_size=0.9, **options)
    assert result.settings["task"] == "regression"
    assert result.settings["test_size"] is None  # given split: test_size was not used
    assert result.settings["n_test"] == 10
    labels = np.arange(40) % 3
    assert compare((X, labels), **options).settings["task"] == "classification"
    assert compare((X, labels), **options).settings["test_size"] == 0.25


def test_a_bound_that_is_not_positive_leaves_excess_and_times_empty(planted):
    """At beta = 0 the certificate is 0: every row read "excess 1.0, never within 1%",
    even a backprop run 0.001% above the convex objective, with no warning."""
    with pytest.warns(ConvexNNWarning, match=r"lower bound is 0 .*at beta = 0") as caught:
        result = compare(planted, task="regression", beta=0.0, solvers=("clarabel",),
                         optimizers=("lbfgs",), seeds=1, epochs=5, progress=False)
    assert caught[0].filename == __file__
    for record in result.records:
        assert math.isnan(record["relative_excess"]), record
        assert math.isnan(record["time_to_1pct"]) and math.isnan(record["time_to_0.1pct"])
    assert "a bound that is not positive says nothing" in result.to_markdown()


def test_max_samples_below_the_classes_is_named(planted):
    """It said "y has a single class (0)" or "y_test has labels the training set lacks"."""
    for data, max_samples, words in (
        ("iris", 2, "the 3 classes need at least one each; raise max_samples to 3"),
        (planted, 1, "fitting needs at least 2"),
    ):
        with pytest.raises(ValidationError, match=f"max_samples={max_samples} keeps "
                           f"{max_samples} training sample.*{words}"):
            compare(data, max_samples=max_samples, solvers=("native",), optimizers=(),
                    progress=False)


def test_backprop_option_errors_name_backprop_options():
    with pytest.raises(ValidationError, match=r"backprop_options\['time_limit'\]: time_limit "):
        compare("iris", solvers=(), optimizers=("adam",), backprop_options={"time_limit": 0},
                progress=False)


def test_the_metric_figure_says_n_a_for_a_metric_without_value_not_failed(comparison):
    import dataclasses

    from convexnn.comparison._plots import plot_test_metric

    records = [dict(r, test_metric=math.nan) for r in comparison.records]
    figure = plot_test_metric(dataclasses.replace(comparison, records=records))
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert texts.count("failed") == 1  # mosek, unlicensed
    assert texts.count("n/a") == 1 + len(OPTIMIZERS)


def test_cli_compare_exits_1_when_every_method_failed(tmp_path, capsys, failing_cvxopt):
    code = main(["compare", "--dataset", "iris", "--solvers", "cvxopt", "--optimizers", "",
                 "--out", str(tmp_path), "--no-progress"])
    assert code == 1 and "every method failed" in capsys.readouterr().err
    assert (tmp_path / "comparison.json").exists()  # the report is written all the same


def test_the_backprop_memory_estimate_follows_what_the_passes_hold():
    """The first estimate counted every pooled position of a convolutional network: a
    10000-image 28 x 28 run of width 200 (1.5 GB measured) was refused at 26 GB; dense
    passes hold about six values per unit and sample (970 MB measured at 4000 x 5000)."""
    from convexnn import ConvGeometry
    from convexnn.comparison._compare import _backprop_bytes

    geometry = ConvGeometry((1, 28, 28), filter_size=5, pool_size=12)
    assert _backprop_bytes(8000, 200, 784, 10, geometry) < 1.5e9
    assert 0.8e9 < _backprop_bytes(4000, 5000, 10, 1, None) < 1.5e9
