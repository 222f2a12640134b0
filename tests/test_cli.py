"""The ``convexnn`` command line: ``solvers``, ``demo``, ``fit`` / ``predict`` / ``certify``,
``path`` / ``cv`` and error reporting."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import planted_teacher
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


def test_python_dash_m_convexnn_is_the_command_line():
    """``python -m convexnn`` said 'convexnn is a package and cannot be directly executed'."""
    listed = subprocess.run([sys.executable, "-m", "convexnn", "solvers"], cwd="/",
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and listed.stdout.split()[:4] == [
        "solver", "installed", "licensed", "usable"]
    refused = subprocess.run([sys.executable, "-m", "convexnn", "fit", "--data", "missing.csv",
                              "--target", "y", "--out", "m.npz"], cwd="/",
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "missing.csv" in refused.stderr


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


def test_a_value_read_as_an_option_says_how_to_pass_it(capsys):
    """argparse reads "-1,2" as an option and only said the value was missing."""
    assert main(["demo", "--beta", "-1,2"]) == 2
    assert "if its value starts with '-', write it with '=': --option=-1" in (
        capsys.readouterr().err)
    assert main(["demo", "--beta=-1"]) == 2
    err = capsys.readouterr().err
    assert "beta" in err and "write it with '='" not in err


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


# -- fit / predict / certify / path / cv (issue 13) --------------------------------------------


@pytest.mark.parametrize("command", ["fit", "predict", "certify", "path", "cv"])
def test_model_command_help_imports_no_heavy_package(command):
    code = (
        "from convexnn.cli import main\n"
        "try:\n"
        f"    main([{command!r}, '--help'])\n"
        "except SystemExit:\n"
        "    pass"
    )
    assert _heavy_modules_loaded_by(code) == "[]"


def _write_csv(path, X, y=None, header=True):
    names = [f"f{j}" for j in range(X.shape[1])] + ([] if y is None else ["label"])
    lines = [",".join(names)] if header else []
    for i, row in enumerate(X):
        cells = [repr(float(v)) for v in row] + ([] if y is None else [str(y[i])])
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A small labelled CSV (string labels), a features-only CSV and the arrays."""
    t = planted_teacher(n=60, d=3, seed=31, noise=0.3)
    labels = np.where(t.y > np.median(t.y), "up", "down")
    folder = tmp_path_factory.mktemp("cli")
    return {
        "train": _write_csv(folder / "train.csv", t.X, labels),
        "features": _write_csv(folder / "features.csv", t.X[:7]),
        "X": t.X,
        "labels": labels,
        "folder": folder,
    }


def _frame(X):
    """``X`` with the header names :func:`_write_csv` gives its columns."""
    import pandas as pd

    return pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])


def _fields(out: str) -> dict[str, str]:
    return {line[:18].strip(): line[18:].strip() for line in out.splitlines() if line[:18].strip()}


@pytest.mark.filterwarnings("ignore::convexnn.exceptions.SolverStatusWarning")
def test_fit_predict_certify_end_to_end(labelled, capsys):
    from convexnn import ConvexPolyClassifier

    model = labelled["folder"] / "model.npz"
    assert main(["fit", "--data", str(labelled["train"]), "--target", "label",
                 "--beta", "0.5", "--solver", "native", "--out", str(model)]) == 0
    fields = _fields(capsys.readouterr().out)
    assert fields["model"] == "ConvexPolyClassifier, beta 0.5"
    assert fields["solver"].startswith("native (optimal)")
    reference = ConvexPolyClassifier(beta=0.5, solver="native").fit(labelled["X"],
                                                                    labelled["labels"])
    assert float(fields["objective"]) == pytest.approx(reference.result_.objective, rel=1e-7)
    assert float(fields["lower bound"]) <= float(fields["objective"])
    loaded = ConvexPolyClassifier.load(model)
    assert list(loaded.feature_names_in_) == ["f0", "f1", "f2"]  # the header's
    np.testing.assert_array_equal(loaded.predict(_frame(labelled["X"])),
                                  reference.predict(labelled["X"]))

    # predict: features only, printed; the labelled file, written with its score
    assert main(["predict", str(model), "--data", str(labelled["features"])]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == list(reference.predict(labelled["X"][:7]))
    preds = labelled["folder"] / "preds.csv"
    assert main(["predict", str(model), "--data", str(labelled["train"]), "--target", "label",
                 "--out", str(preds)]) == 0
    out = capsys.readouterr().out
    lines = preds.read_text().splitlines()
    assert lines[0] == "prediction" and lines[1:] == list(reference.predict(labelled["X"]))
    accuracy = reference.score(labelled["X"], labelled["labels"])
    assert f"accuracy {accuracy:.4f}" in out

    # certify: the model's own objective and bound on its training data
    assert main(["certify", str(model), "--data", str(labelled["train"]),
                 "--target", "label"]) == 0
    fields = _fields(capsys.readouterr().out)
    assert fields["samples"] == "60"
    assert float(fields["objective"]) == pytest.approx(reference.result_.objective, rel=1e-7)
    assert float(fields["lower bound"]) == pytest.approx(reference.result_.lower_bound, rel=1e-6)
    relative = float(re.search(r"relative ([0-9.e+-]+)", fields["certified gap"]).group(1))
    assert relative <= 1e-5 and "note" not in fields
    # on other data the gap is large, and the output says why (it alarmed without a word)
    flipped = np.where(labelled["labels"] == "up", "down", "up")
    other = _write_csv(labelled["folder"] / "flipped.csv", labelled["X"], flipped)
    assert main(["certify", str(model), "--data", str(other), "--target", "label"]) == 0
    fields = _fields(capsys.readouterr().out)
    assert "large gap is expected" in fields["note"] and "--tighten" in fields["note"]


@pytest.mark.filterwarnings("ignore::convexnn.exceptions.SolverStatusWarning")
def test_fit_with_cv_saves_the_model_at_the_chosen_beta(labelled, capsys):
    from convexnn import ConvexPolyClassifier, ConvexPolyClassifierCV

    model = labelled["folder"] / "cv-model.npz"
    assert main(["fit", "--data", str(labelled["train"]), "--target", "label", "--cv", "3",
                 "--betas", "5", "--solver", "native", "--out", str(model)]) == 0
    fields = _fields(capsys.readouterr().out)
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(3, shuffle=True, random_state=0)  # what the CLI uses
    reference = ConvexPolyClassifierCV(betas=5, cv=folds, solver="native").fit(
        labelled["X"], labelled["labels"])
    assert fields["model"].startswith(
        f"ConvexPolyClassifier, beta {reference.beta_:.6g} chosen by 3-fold CV over 5 betas")
    # The solver line is the refit's; the whole run's time is on a line of its own.
    assert re.fullmatch(r"[0-9.]+ s in all \(15 path points and the refit\)",
                        fields["cross-validation"])
    total = float(fields["cross-validation"].split()[0])
    solver_seconds = float(re.search(r", ([0-9.]+) s$", fields["solver"]).group(1))
    assert solver_seconds < total
    loaded = ConvexPolyClassifier.load(model)
    assert loaded.beta == reference.beta_
    np.testing.assert_array_equal(loaded.predict(_frame(labelled["X"])),
                                  reference.predict(labelled["X"]))


@pytest.mark.filterwarnings("ignore::convexnn.exceptions.SolverStatusWarning")
@pytest.mark.parametrize("command", ["path", "cv"])
def test_path_and_cv_commands_write_the_picture_and_table(labelled, command, capsys):
    out = labelled["folder"] / f"{command}-out"
    extra = ["--folds", "2"] if command == "cv" else ["--test-size", "0.3"]
    assert main([command, "--data", str(labelled["train"]), "--target", "label", "--betas", "4",
                 "--solver", "native", "--out", str(out), *extra]) == 0
    printed = capsys.readouterr().out
    assert (out / f"{command}.png").read_bytes()[:4] == b"\x89PNG"
    rows = (out / f"{command}.csv").read_text().splitlines()
    assert rows[0].startswith("beta,mean_score") and len(rows) == 5
    chosen = [row for row in rows[1:] if row.endswith(",1")]
    assert len(chosen) == 1
    beta = float(chosen[0].split(",")[0])
    assert f"beta_ = {beta:.6g}" in printed and "(beta_)" in printed
    assert ("`convexnn fit --cv` chooses beta by the same folds" if command == "cv"
            else f"`convexnn fit --beta {beta:.6g}`") in printed
    folds = "2" if command == "cv" else "1"
    assert rows[1].split(",")[-2] == folds


@pytest.mark.parametrize(
    "argv, words",
    [
        (["fit", "--data", "/nonexistent/d.csv", "--out", "m.npz"],
         ("MissingFileError", "data file not found")),
        (["fit", "--data", "TRAIN", "--target", "nope", "--out", "m.npz"],
         ("ValidationError", "target 'nope' is not a column")),
        (["fit", "--data", "TRAIN", "--target", "label", "--cv", "1", "--out", "m.npz"],
         ("ValidationError", "--cv must be a number of folds, at least 2; got 1")),
        (["cv", "--dataset", "iris", "--folds", "1"],
         ("ValidationError", "--folds must be a number of folds, at least 2; got 1")),
        (["path", "--dataset", "iris", "--n-jobs", "2"], ("unrecognized arguments: --n-jobs",)),
        (["fit", "--data", "TRAIN", "--target", "label", "--loss", "l1", "--out", "m.npz"],
         ("ValidationError", "not a classification loss")),
        (["fit", "--data", "TRAIN", "--out", "/nonexistent/m.npz", "--target", "label"],
         ("MissingFileError", "does not exist")),
        (["predict", "/nonexistent/m.npz", "--data", "TRAIN"],
         ("MissingFileError", "no such file")),
        (["predict", "TRAIN", "--data", "TRAIN"],
         ("ValidationError", "is not a saved convexnn estimator")),
        (["certify", "MODEL", "--data", "FEATURES"],
         ("ValidationError", "has no targets", "--target")),
        (["predict", "MODEL", "--data", "FEATURES", "--target", "f0"],
         ("ValidationError", "X has 2 features")),
        (["cv", "--dataset", "iris", "--betas", "x,y"], ("argument --betas",)),
        (["cv", "--dataset", "iris", "--betas", "1,,2"], ("argument --betas", "'1,,2'")),
        (["path", "--dataset", "iris", "--target", "3"], ("--target applies to --data files",)),
        (["path", "--dataset", "iris", "--test-size", "1.5"],
         ("ValidationError", "--test-size must be a fraction in (0, 1); got 1.5")),
        (["path", "--dataset", "iris", "--out", "TRAIN"], ("ValidationError", "is a file")),
        (["compare", "--dataset", "iris", "--out", "TRAIN"], ("ValidationError", "is a file")),
        (["predict", "MODEL", "--data", "TWO_COLUMNS"],
         ("ValidationError", "has 2 columns; the model takes 3 features (4 columns")),
        (["fit", "--data", "TRAIN", "--cv", "3", "--beta", "7", "--out", "m.npz"],
         ("ValidationError", "--beta and --cv exclude each other")),
        (["fit", "--data", "TRAIN", "--betas", "5", "--eps", "0.1", "--out", "m.npz"],
         ("ValidationError", "--betas/--eps apply with --cv only")),
    ],
    ids=["missing-data", "bad-target", "one-fold", "cv-one-fold", "path-n-jobs",
         "regression-loss", "unwritable-model",
         "missing-model", "not-a-model", "certify-without-targets", "too-few-features",
         "bad-betas", "betas-with-an-empty-item", "target-with-dataset", "bad-test-size",
         "out-is-a-file", "compare-out-is-a-file", "wrong-column-count", "beta-with-cv",
         "grid-without-cv"],
)
def test_model_command_errors_are_one_line_with_exit_code_2(labelled, argv, words, capsys):
    model = labelled["folder"] / "model-for-errors.npz"
    if not model.exists():
        from convexnn import ConvexPolyClassifier

        ConvexPolyClassifier(beta=1.0, solver="native").fit(
            labelled["X"], labelled["labels"]).save(model)
    two_columns = _write_csv(labelled["folder"] / "two.csv", labelled["X"][:5, :2], header=False)
    paths = {"TRAIN": labelled["train"], "FEATURES": labelled["features"], "MODEL": model,
             "TWO_COLUMNS": two_columns}
    argv = [str(paths.get(arg, arg)) for arg in argv]
    capsys.readouterr()
    assert main(argv) == 2
    _, err = capsys.readouterr()
    assert err.startswith("convexnn: error: ") and err.count("\n") == 1, err
    assert "unexpected error" not in err
    for word in words:
        assert word in err, err


@pytest.mark.filterwarnings("ignore::convexnn.exceptions.SolverStatusWarning")
def test_a_model_fitted_on_a_header_finds_its_columns_by_name(labelled, tmp_path, capsys):
    """Target first at fit time, columns shuffled later: the names decide, not positions."""
    from convexnn import ConvexPolyClassifier

    X, labels = labelled["X"], labelled["labels"]
    rows = [",".join(["label", "f0", "f1", "f2"])]
    rows += [",".join([labels[i]] + [repr(float(v)) for v in X[i]]) for i in range(len(X))]
    (tmp_path / "first.csv").write_text("\n".join(rows) + "\n")
    model = tmp_path / "named.npz"
    assert main(["fit", "--data", str(tmp_path / "first.csv"), "--target", "label",
                 "--beta", "0.5", "--solver", "native", "--out", str(model)]) == 0
    loaded = ConvexPolyClassifier.load(model)
    assert list(loaded.feature_names_in_) == ["f0", "f1", "f2"]
    reference = ConvexPolyClassifier(beta=0.5, solver="native").fit(X, labels).predict(X)

    rows = [",".join(["f2", "label", "f0", "f1"])]
    rows += [",".join([repr(float(X[i, 2])), labels[i], repr(float(X[i, 0])),
                       repr(float(X[i, 1]))]) for i in range(len(X))]
    (tmp_path / "shuffled.csv").write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    # no --target: the one column that is not a feature is the target
    assert main(["predict", str(model), "--data", str(tmp_path / "shuffled.csv"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    assert (tmp_path / "p.csv").read_text().splitlines()[1:] == list(reference)
    assert main(["certify", str(tmp_path / "named"), "--data",  # the .npz is found
                 str(tmp_path / "shuffled.csv")]) == 0
    assert "samples           60" in capsys.readouterr().out

    assert main(["predict", str(model), "--data", str(tmp_path / "shuffled.csv"),
                 "--target", "f0"]) == 2
    assert "--target f0 is one of the model's feature columns" in capsys.readouterr().err
    (tmp_path / "renamed.csv").write_text("g0,f1,f2\n1,2,3\n")
    assert main(["predict", str(model), "--data", str(tmp_path / "renamed.csv")]) == 2
    assert "has no column(s) ['f0'], which the model was fitted on" in capsys.readouterr().err


def test_svmlight_rows_without_the_last_feature_are_not_given_the_label(tmp_path, capsys):
    """The last feature is zero in every row, so the file never mentions it."""
    from convexnn import ConvexPolyRegressor

    t = planted_teacher(n=30, d=4, seed=33)
    model = ConvexPolyRegressor(beta=0.5, solver="native").fit(t.X, t.y)
    model.save(tmp_path / "m.npz")
    X = np.column_stack([t.X[:, :3], np.zeros(len(t.X))])
    lines = [f"{float(t.y[i])!r} " + " ".join(f"{j + 1}:{float(X[i, j])!r}" for j in range(3))
             for i in range(len(X))]
    (tmp_path / "d.libsvm").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m.npz"), "--data", str(tmp_path / "d.libsvm")]) == 0
    printed = np.array(capsys.readouterr().out.split(), dtype=float)
    np.testing.assert_allclose(printed, model.predict(X), rtol=1e-12)
    # A wider file: the model's width named (scikit-learn's message called the file invalid);
    # --target: refused, as fit refuses it (it was ignored)
    wide = "1.0 1:0.5 6:1.25\n0.0 2:0.25\n"
    (tmp_path / "wide.libsvm").write_text(wide)
    for argv, words in (
        (["--data", str(tmp_path / "wide.libsvm")], "has 6 features .* more than the 4 expected"),
        (["--data", str(tmp_path / "d.libsvm"), "--target", "1"], "--target applies to CSV"),
    ):
        assert main(["predict", str(tmp_path / "m.npz"), *argv]) == 2
        err = capsys.readouterr().err
        assert re.search(words, err) and "not a valid" not in err


def _svmlight_lines(X, y, first_index):
    return "".join(
        f"{float(label)!r} " + " ".join(f"{j + first_index}:{float(value)!r}"
                                        for j, value in enumerate(row) if value != 0) + "\n"
        for row, label in zip(X, y))


def test_a_model_fitted_on_a_zero_based_svmlight_file_reads_its_new_files_alike(
        tmp_path, capsys):
    """Fitted on a zero-based file, the model predicted on a zero-based file that never
    mentions index 0 (feature 0 is zero in all its rows) with every feature moved one
    column right: that file is read one-based by scikit-learn's rule."""
    from convexnn import ConvexPolyRegressor

    t = planted_teacher(n=40, d=3, seed=35)
    (tmp_path / "train.svm").write_text(_svmlight_lines(t.X, t.y, 0))
    assert main(["fit", "--data", str(tmp_path / "train.svm"), "--beta", "0.5",
                 "--solver", "native", "--out", str(tmp_path / "m.npz")]) == 0
    new = t.X[:5].copy()
    new[:, 0] = 0.0
    (tmp_path / "new.svm").write_text(_svmlight_lines(new, t.y[:5], 0))
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m.npz"), "--data", str(tmp_path / "new.svm")]) == 0
    printed = np.array(capsys.readouterr().out.split(), dtype=float)
    model = ConvexPolyRegressor.load(tmp_path / "m.npz")
    np.testing.assert_allclose(printed, model.predict(new), rtol=1e-12)
    assert main(["certify", str(tmp_path / "m.npz"), "--data", str(tmp_path / "new.svm")]) == 0


@pytest.mark.filterwarnings("ignore::convexnn.exceptions.SolverStatusWarning")
def test_fit_checks_the_model_folder_first_and_saves_before_printing(labelled, tmp_path,
                                                                      monkeypatch, capsys):
    import convexnn._commands

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before the output folder was checked")

    with monkeypatch.context() as patch:
        patch.setattr("convexnn.ConvexPolyClassifier.fit", no_fit)
        assert main(["fit", "--data", str(labelled["train"]), "--target", "label",
                     "--out", str(tmp_path / "nowhere" / "m.npz")]) == 2
    assert "folder" in capsys.readouterr().err

    def closed_pipe(*args, **kwargs):  # what print raises when stdout is a closed pipe
        raise BrokenPipeError

    monkeypatch.setattr(convexnn._commands, "print_result", closed_pipe)
    main(["fit", "--data", str(labelled["train"]), "--target", "label", "--beta", "0.5",
          "--solver", "native", "--out", str(tmp_path / "m.npz")])
    assert (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("command", ["fit", "path"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_the_solve(
        command, labelled, tmp_path, monkeypatch, capsys):
    """A read-only --out folder was found out only when saving, after the whole solve."""
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before the output folder was checked")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    monkeypatch.setattr("convexnn.ConvexPolyClassifier.fit", no_fit)
    monkeypatch.setattr("convexnn.ConvexPolyClassifierCV.fit", no_fit)
    out = tmp_path / ("m.npz" if command == "fit" else "results")
    argv = [command, "--data", str(labelled["train"]), "--target", "label", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot write to the folder" in err and "Permission denied" in err


@pytest.mark.filterwarnings("ignore::convexnn.exceptions.SolverStatusWarning")
def test_predict_with_targets_the_model_cannot_score_writes_nothing(labelled, tmp_path, capsys):
    from convexnn import ConvexPolyRegressor

    ConvexPolyRegressor(beta=0.5, solver="native").fit(
        labelled["X"], labelled["X"][:, 0]).save(tmp_path / "reg.npz")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "reg.npz"), "--data", str(labelled["train"]),
                 "--target", "label", "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "does not suit the model" in err and "unexpected" not in err
    assert not (tmp_path / "p.csv").exists()


def test_a_header_that_repeats_a_name_is_one_clear_error(tmp_path, capsys):
    """scikit-learn's 'Expected unique column names' named neither the file nor the name."""
    (tmp_path / "dup.csv").write_text("a,a,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    assert main(["fit", "--data", str(tmp_path / "dup.csv"), "--out",
                 str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert "dup.csv: the header names the column(s) ['a'] more than once" in err


def test_predict_writes_predictions_when_the_guessed_target_column_cannot_score(
        labelled, tmp_path, capsys):
    """A file with the model's features and one other column (an id): that column is taken
    for the target, and a score against it failed the whole command (exit 2, nothing
    written) although only predictions were asked for."""
    from convexnn import ConvexPolyClassifier

    X = labelled["X"][:, :3]
    labels = np.where(X[:, 0] > 0, "yes", "no")
    ConvexPolyClassifier(beta=0.5, solver="native").fit(_frame(X), labels).save(
        tmp_path / "m.npz")
    ids = range(len(X))  # numbers against string labels: no score
    (tmp_path / "new.csv").write_text("f0,f1,f2,id\n" + "".join(
        f"{a!r},{b!r},{c!r},{i}\n" for (a, b, c), i in zip(X.tolist(), ids)))
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m.npz"), "--data", str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    err = capsys.readouterr().err
    assert "warning: ConvexNNWarning: not scored" in err and "--target" in err
    written = (tmp_path / "p.csv").read_text().split()
    assert written[0] == "prediction" and len(written) == len(X) + 1


@pytest.mark.filterwarnings("ignore::convexnn.exceptions.SolverStatusWarning")
def test_warnings_are_one_line_on_stderr(tmp_path, capsys):
    """Not Python's two-line form with a source path and a code line."""
    t = planted_teacher(n=30, d=3, seed=34)
    _write_csv(tmp_path / "huge.csv", t.X * 2e4, t.y)
    assert main(["fit", "--data", str(tmp_path / "huge.csv"), "--target", "label",
                 "--solver", "native", "--out", str(tmp_path / "m.npz")]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "FeatureScalingWarning" in line]
    assert lines and lines[0].startswith("convexnn: warning: FeatureScalingWarning: X is badly")
    assert ".py:" not in err
    # advice in the command line's words, not Python's (make_pipeline, max_iter)
    assert "standardise the file's columns" in lines[0] and "make_pipeline" not in lines[0]


@pytest.mark.filterwarnings("default::convexnn.exceptions.SolverStatusWarning")
def test_a_status_warning_speaks_of_the_command_line_options(tmp_path, capsys):
    t = planted_teacher(n=30, d=3, seed=34)
    _write_csv(tmp_path / "data.csv", t.X, t.y)
    assert main(["fit", "--data", str(tmp_path / "data.csv"), "--target", "label",
                 "--solver", "native", "--max-iter", "1", "--beta", "0.01",
                 "--out", str(tmp_path / "m.npz")]) == 0
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "SolverStatusWarning" in line)
    assert "Raise --max-iter / --time-limit" in line and "a larger --tol" in line


def test_a_zero_lower_bound_is_printed_without_a_sign(capsys):
    from types import SimpleNamespace

    from convexnn._commands import print_certificate

    print_certificate(SimpleNamespace(objective=1.0, lower_bound=-0.0, duality_gap=1.0,
                                      relative_gap=1.0))
    assert "lower bound       0\n" in capsys.readouterr().out


def test_predict_reads_unlabelled_npz_and_idx_files(tmp_path, capsys):
    """Features only: an .npz without ``y`` and IDX images without a labels file."""
    import struct

    from convexnn import ConvexPolyRegressor

    images = np.random.default_rng(35).integers(0, 256, (20, 3, 2)).astype(np.uint8)
    X = images.reshape(20, 6).astype(float) / 255
    model = ConvexPolyRegressor(beta=0.5, solver="native").fit(X, X[:, 0] - X[:, 5])
    model.save(tmp_path / "m.npz")
    expected = model.predict(X)
    np.savez(tmp_path / "features.npz", X=X)
    header = struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">3I", *images.shape)
    (tmp_path / "new-images-idx3-ubyte").write_bytes(header + images.tobytes())
    pixels = images.reshape(20, 6).astype(float)
    raw = ConvexPolyRegressor(beta=0.5, solver="native").fit(pixels, X[:, 0])
    raw.save(tmp_path / "raw.npz")
    for model_file, data, reference in (
        ("m.npz", "features.npz", expected),
        ("raw.npz", "new-images-idx3-ubyte", raw.predict(pixels)),
    ):
        capsys.readouterr()
        assert main(["predict", str(tmp_path / model_file), "--data", str(tmp_path / data)]) == 0
        printed = np.array(capsys.readouterr().out.split(), dtype=float)
        np.testing.assert_allclose(printed, reference, rtol=1e-12)
    # A truncated archive: one error line, and its file closed (np.load left it open).
    import gc
    import warnings

    truncated = tmp_path / "truncated.npz"
    whole = (tmp_path / "features.npz").read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # ResourceWarning is ignored by default
        assert main(["predict", str(tmp_path / "m.npz"), "--data", str(truncated)]) == 2
        gc.collect()
    err = capsys.readouterr().err
    assert "truncated.npz" in err and "ResourceWarning" not in err, err


def test_predict_on_rows_without_a_target_scores_the_labelled_ones(labelled, tmp_path, capsys):
    """A file to predict on keeps its target column with empty cells (labels not known
    yet, or only for some rows): predict refused the whole file ("missing value in column
    'label'") although it needs only the features."""
    from convexnn import ConvexPolyClassifier

    X = labelled["X"][:, :3]
    labels = np.where(X[:, 0] > 0, "yes", "no")
    model = ConvexPolyClassifier(beta=0.5, solver="native").fit(_frame(X), labels)
    model.save(tmp_path / "m.npz")
    expected = model.predict(_frame(X))
    known = np.arange(len(X)) % 3 != 0
    rows = [f"{a!r},{b!r},{c!r}," for a, b, c in X.tolist()]
    (tmp_path / "none.csv").write_text("f0,f1,f2,label\n" + "\n".join(rows) + "\n")
    (tmp_path / "some.csv").write_text("f0,f1,f2,label\n" + "".join(
        row + (label if keep else "") + "\n" for row, label, keep in zip(rows, labels, known)))
    # No header: the last column is a numeric target with gaps.
    numeric = ConvexPolyClassifier(beta=0.5, solver="native").fit(X, (X[:, 0] > 0).astype(int))
    numeric.save(tmp_path / "numeric.npz")
    (tmp_path / "plain.csv").write_text("".join(
        row + (str(int(a > 0)) if keep else "") + "\n"
        for row, (a, _, _), keep in zip(rows, X.tolist(), known)))
    for model_file, data, scored in (("m.npz", "none.csv", None),
                                     ("m.npz", "some.csv", model.score(_frame(X)[known],
                                                                       labels[known])),
                                     ("numeric.npz", "plain.csv", None)):
        capsys.readouterr()
        assert main(["predict", str(tmp_path / model_file), "--data", str(tmp_path / data),
                     "--out", str(tmp_path / "p.csv")]) == 0, data
        out = capsys.readouterr().out
        written = (tmp_path / "p.csv").read_text().split()[1:]
        assert len(written) == len(X)
        if data == "none.csv":
            assert written == expected.tolist() and "accuracy" not in out
        else:
            assert f"(on the {known.sum()} of {len(X)} rows with a target)" in out
        if scored is not None:
            assert f"accuracy {scored:.4f} (on" in out
    # certify needs every target
    code = main(["certify", str(tmp_path / "m.npz"), "--data", str(tmp_path / "some.csv"),
                 "--target", "label"])
    assert code == 2 and "missing value in column 'label'" in capsys.readouterr().err


def test_predict_does_not_score_against_a_guessed_column_of_other_values(tmp_path, capsys):
    """An integer id column next to the features was taken for the target of a 0/1
    classifier and scored: "accuracy 0.0167", silently meaningless."""
    from convexnn import ConvexPolyClassifier

    X = np.random.default_rng(36).normal(size=(60, 3))
    ConvexPolyClassifier(beta=0.5, solver="native").fit(
        _frame(X), (X[:, 0] > 0).astype(int)).save(tmp_path / "m.npz")
    (tmp_path / "new.csv").write_text("f0,f1,f2,id\n" + "".join(
        f"{a!r},{b!r},{c!r},{i}\n" for i, (a, b, c) in enumerate(X.tolist())))
    capsys.readouterr()
    command = ["predict", str(tmp_path / "m.npz"), "--data", str(tmp_path / "new.csv"),
               "--out", str(tmp_path / "p.csv")]
    assert main(command) == 0
    captured = capsys.readouterr()
    assert "accuracy" not in captured.out
    assert "58 of its values (e.g. 2) are not among the model's classes [0, 1]" in captured.err
    # Named with --target, the user asked for that score.
    assert main([*command, "--target", "id"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_fit_announces_a_long_silent_solve_unless_verbose_or_limited(tmp_path, capsys,
                                                                      monkeypatch):
    """The warning names the command line's flags; with -v the solver's log shows the
    progress, so it is not repeated."""
    import convexnn.solvers.native._neurons

    monkeypatch.setattr(convexnn.solvers.native._neurons, "LARGE_PROBLEM", 100)
    t = planted_teacher(n=40, d=3, seed=38)
    _write_csv(tmp_path / "train.csv", t.X, t.y)
    command = ["fit", "--data", str(tmp_path / "train.csv"), "--target", "label", "--loss",
               "huber", "--solver", "native", "--out", str(tmp_path / "m.npz")]
    for extra, announced in (([], True), (["-v"], False), (["--time-limit", "60"], False)):
        capsys.readouterr()
        assert main([*command, *extra]) == 0
        err = capsys.readouterr().err
        assert ("LongSolveWarning" in err) == announced, extra
        if announced:
            assert "-v on the command line" in err and "--time-limit" in err


def test_predict_quotes_labels_and_scores_a_multi_output_regressor(tmp_path, capsys):
    """Predictions were joined with bare commas ("Smith, John" became two columns), and a
    2-D target crashed predict --out with an IndexError from its labelled-rows mask."""
    import pandas as pd

    X = np.random.default_rng(37).normal(size=(30, 3))
    names = np.where(X[:, 0] > 0, "Smith, John", 'say "hi"')
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "who": names}).to_csv(
        tmp_path / "names.csv", index=False)
    assert main(["fit", "--data", str(tmp_path / "names.csv"), "--target", "who",
                 "--out", str(tmp_path / "names.npz")]) == 0
    capsys.readouterr()
    out = tmp_path / "p.csv"
    assert main(["predict", str(tmp_path / "names.npz"), "--data", str(tmp_path / "names.csv"),
                 "--out", str(out)]) == 0
    written = pd.read_csv(out)
    assert list(written.columns) == ["prediction"]
    assert set(written["prediction"]) <= {"Smith, John", 'say "hi"'}
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "names.npz"), "--data",
                 str(tmp_path / "names.csv")]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out), header=None)
    assert printed.shape == (30, 1)
    np.testing.assert_array_equal(printed[0], written["prediction"])

    Y = np.column_stack([X[:, 0] ** 2, X[:, 1]])
    np.savez(tmp_path / "two.npz", X=X, y=Y)
    assert main(["fit", "--data", str(tmp_path / "two.npz"),
                 "--out", str(tmp_path / "two-model.npz")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "two-model.npz"), "--data", str(tmp_path / "two.npz"),
                 "--out", str(tmp_path / "two.csv")]) == 0
    assert "R^2" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "two.csv").shape == (30, 2)


def test_predict_and_fit_refuse_an_output_path_they_cannot_write_before_working(
        labelled, tmp_path, capsys):
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "folder.npz").mkdir()
    model = tmp_path / "m.npz"
    assert main(["fit", "--data", str(labelled["train"]), "--target", "label",
                 "--out", str(model)]) == 0
    for out, message in ((tmp_path / "folder.csv", "is a folder"),
                         (tmp_path / "missing" / "p.csv", "does not exist")):
        capsys.readouterr()
        assert main(["predict", str(model), "--data", str(labelled["features"]),
                     "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
    capsys.readouterr()
    assert main(["fit", "--data", str(labelled["train"]), "--target", "label",
                 "--out", str(tmp_path / "folder")]) == 2
    err = capsys.readouterr().err
    assert "folder.npz: it is a folder" in err and "Traceback" not in err
    # Checked first: neither the model nor the data is read before.
    assert main(["predict", str(tmp_path / "no-model.npz"), "--data", "no-data.csv",
                 "--out", str(tmp_path / "folder.csv")]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["fit", "--data", "no-data.csv", "--out", str(tmp_path / "folder")]) == 2
    assert "it is a folder" in capsys.readouterr().err
    if Path("/dev/fd").is_dir():  # a pipe, as from --out >(...): writable, though no
        # temporary file can be made beside it (the first check refused it)
        read_end, write_end = os.pipe()
        try:
            from convexnn._commands import check_output_file

            check_output_file(Path(f"/dev/fd/{write_end}"), {})
        finally:
            os.close(read_end)
            os.close(write_end)


def test_an_output_path_that_is_an_input_file_is_refused_and_the_file_kept(
        labelled, tmp_path, capsys):
    """predict --out DATA wrote the predictions over the data (exit 0), and --out MODEL over
    the model; fit --out DATA.npz would have written the model over its data."""
    data = tmp_path / "data.csv"
    data.write_bytes(labelled["train"].read_bytes())
    model = tmp_path / "m.npz"
    assert main(["fit", "--data", str(data), "--target", "label", "--out", str(model)]) == 0
    kept = {path: path.read_bytes() for path in (data, model)}
    for out, which in ((data, "--data"), (model, "model"),
                       (tmp_path / "." / "data.csv", "--data")):  # the same file, spelt anew
        capsys.readouterr()
        assert main(["predict", str(model), "--data", str(data), "--target", "label",
                     "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"is the {which} file" in err and "Traceback" not in err
    arrays = tmp_path / "train.npz"
    np.savez(arrays, X=labelled["X"], y=labelled["labels"])
    kept[arrays] = arrays.read_bytes()
    assert main(["fit", "--data", str(arrays), "--out", str(tmp_path / "train")]) == 2
    assert "is the --data file" in capsys.readouterr().err
    named_like_output = tmp_path / "cv.csv"  # what cv writes into its --out folder
    named_like_output.write_bytes(data.read_bytes())
    kept[named_like_output] = named_like_output.read_bytes()
    assert main(["cv", "--data", str(named_like_output), "--target", "label", "--betas", "2",
                 "--out", str(tmp_path)]) == 2
    assert "cv.csv is the --data file" in capsys.readouterr().err
    assert all(path.read_bytes() == content for path, content in kept.items())


def test_zero_padded_labels_stay_labels_from_fit_to_predict(tmp_path, capsys):
    """"02134" and "2134" were merged into the class 2134, and predictions read "2134"."""
    X = np.random.default_rng(3).normal(size=(30, 2))
    codes = np.array(["02134", "2134", "10001"])[np.argmax(X @ [[1, -1, 0], [0, 1, -1]], 1)]
    _write_csv(tmp_path / "train.csv", X, codes)
    model = tmp_path / "m.npz"
    assert main(["fit", "--data", str(tmp_path / "train.csv"), "--target", "label",
                 "--out", str(model)]) == 0
    from convexnn import ConvexPolyClassifier

    assert sorted(ConvexPolyClassifier.load(model).classes_) == ["02134", "10001", "2134"]
    capsys.readouterr()
    assert main(["predict", str(model), "--data", str(tmp_path / "train.csv"),
                 "--target", "label", "--out", str(tmp_path / "p.csv")]) == 0
    predicted = (tmp_path / "p.csv").read_text().split()[1:]
    assert "02134" in predicted and set(predicted) <= set(codes)


def test_delimiter_reads_semicolon_and_tab_separated_files(labelled, tmp_path, capsys):
    """A semicolon CSV was read as one column, and the hint asked for an option only the
    Python loader had."""
    from convexnn import ConvexPolyClassifier

    rows = labelled["train"].read_text().splitlines()
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text("\n".join(row.replace(",", ";") for row in rows) + "\n")
    capsys.readouterr()
    assert main(["fit", "--data", str(semicolons), "--out", str(tmp_path / "m.npz")]) == 2
    assert "single column" in capsys.readouterr().err
    model = tmp_path / "m.npz"
    assert main(["fit", "--data", str(semicolons), "--delimiter", ";", "--target", "label",
                 "--out", str(model)]) == 0
    fitted = ConvexPolyClassifier.load(model)
    assert list(fitted.feature_names_in_) == ["f0", "f1", "f2"]
    expected = fitted.predict(_frame(labelled["X"]))
    tabs = tmp_path / "tabs.csv"
    tabs.write_text("\n".join(row.replace(",", "\t") for row in rows) + "\n")
    for data, separator in ((semicolons, ";"), (tabs, "\\t"), (tabs, "tab")):
        capsys.readouterr()
        assert main(["predict", str(model), "--data", str(data), "--delimiter", separator,
                     "--out", str(tmp_path / "p.csv")]) == 0
        assert (tmp_path / "p.csv").read_text().split()[1:] == list(expected)
    assert main(["certify", str(model), "--data", str(semicolons), "--delimiter", ";"]) == 0
    assert "certified gap" in capsys.readouterr().out
    assert main(["predict", str(model), "--data", str(semicolons)]) == 2
    assert "is --delimiter right?" in capsys.readouterr().err
    for argv, words in (
        (["predict", str(model), "--data", str(model), "--delimiter", ";"],
         "--delimiter applies to delimited text files"),
        (["cv", "--dataset", "iris", "--delimiter", ";"], "--delimiter applies to --data"),
        (["predict", str(model), "--data", str(semicolons), "--delimiter", ""],
         "expected one or more characters"),
    ):
        assert main(argv) == 2
        assert words in capsys.readouterr().err


def test_a_task_or_loss_that_does_not_suit_the_targets_is_told_in_options(tmp_path, capsys):
    """The estimators' messages said "use a regressor (ConvexPolyRegressor)" and "Use a
    classifier": classes a command-line user does not choose."""
    X = np.random.default_rng(5).normal(size=(20, 2))
    data = _write_csv(tmp_path / "real.csv", X, 1.37 * X[:, 0] + 0.1)
    for command in (["fit", "--out", str(tmp_path / "m.npz")], ["path"]):
        for options, words in (
            (["--task", "classification"], "use --task regression or auto"),
            (["--loss", "logistic"], "pass --task classification if they are classes"),
            (["--loss", "cross-entropy", "--task", "regression"], "(--task regression)"),
        ):
            capsys.readouterr()
            assert main([*command, "--data", str(data), *options]) == 2
            err = capsys.readouterr().err
            assert words in err and "Convex" not in err, err
    labels = _write_csv(tmp_path / "labels.csv", X, np.where(X[:, 0] > 0, "up", "down"))
    assert main(["fit", "--data", str(labels), "--task", "regression", "--out", "m.npz"]) == 2
    assert "--task regression: the targets are labels (e.g. '" in capsys.readouterr().err


@pytest.mark.filterwarnings("default::convexnn.exceptions.SolverStatusWarning")
def test_tol_and_max_iter_reach_the_solver(labelled, tmp_path, capsys):
    """The status warning says "raise max_iter / time_limit ... or accept a larger tol": the
    command line had only --time-limit."""
    model = tmp_path / "m.npz"
    base = ["fit", "--data", str(labelled["train"]), "--solver", "native", "--out", str(model)]
    assert main([*base, "--max-iter", "1"]) == 0
    out, err = capsys.readouterr()
    assert "native (iteration_limit)" in out and "SolverStatusWarning" in err
    assert main([*base, "--tol", "1e-3"]) == 0
    fields = _fields(capsys.readouterr().out)
    relative = float(re.search(r"relative ([0-9.e+-]+)", fields["certified gap"]).group(1))
    assert fields["solver"].startswith("native (optimal)") and relative <= 1e-3
    assert main([*base, "--tol", "-1"]) == 2
    assert "option 'tol' must be a positive float" in capsys.readouterr().err


def test_compare_test_size_takes_a_number_of_samples_too(capsys):
    """compare takes a count, as its error said; the option parsed only floats."""
    from convexnn.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["compare", "--dataset", "iris", "--test-size", "30"]).test_size == 30
    assert parse(["compare", "--dataset", "iris", "--test-size", "0.2"]).test_size == 0.2
    assert main(["compare", "--dataset", "iris", "--test-size", "a"]) == 2
    assert "expected a fraction or a number of samples" in capsys.readouterr().err


def test_compare_trains_the_convolutional_network_on_a_file_of_flattened_images(
        tmp_path, capsys):
    """Only the embedded digits could: a file's images are flattened and nothing passed their
    shape, and a filter size had to be one integer."""
    from convexnn.cli import build_parser

    X = np.random.default_rng(0).normal(size=(40, 16))
    np.savez(tmp_path / "images.npz", X=X, y=np.where(X[:, :4].sum(axis=1) > 0, 1, -1))
    argv = ["compare", "--data", str(tmp_path / "images.npz"), "--solvers", "native",
            "--optimizers", "adam", "--seeds", "1", "--epochs", "3", "--filter-size", "2",
            "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "pass --image-shape" in capsys.readouterr().err  # in command-line words
    assert main([*argv, "--image-shape", "4,4", "--pool-size", "1x3"]) == 0
    assert ("convolutional (2x2 filters, stride 1x1, 1x3 average pooling)"
            in capsys.readouterr().out)
    parse = build_parser().parse_args
    assert parse(["compare", "--dataset", "mnist1d", "--filter-size", "1,5"]).filter_size == (1, 5)
    # raw features (the paper's planted runs) from the command line too
    assert main([*argv, "--image-shape", "4,4", "--no-standardize"]) == 0
    assert "classification, raw features" in capsys.readouterr().out
    assert main(["compare", "--dataset", "iris", "--image-shape", "2,2"]) == 2
    assert "give --filter-size too" in capsys.readouterr().err


def test_a_one_feature_model_predicts_on_a_file_of_that_column_alone(tmp_path, capsys):
    """Every one-column file was refused ("a single column; expected feature columns and a
    target column"), with or without a header, and so was a one-column .npy array."""
    x = np.linspace(-1, 1, 20).tolist()
    (tmp_path / "train.csv").write_text("x,t\n" + "".join(f"{v!r},{v * v!r}\n" for v in x))
    model = tmp_path / "m.npz"
    assert main(["fit", "--data", str(tmp_path / "train.csv"), "--out", str(model)]) == 0
    from convexnn import ConvexPolyRegressor

    expected = ConvexPolyRegressor.load(model).predict(np.array(x[:3])[:, None])
    (tmp_path / "named.csv").write_text("x\n" + "".join(f"{v!r}\n" for v in x[:3]))
    (tmp_path / "bare.csv").write_text("".join(f"{v!r}\n" for v in x[:3]))
    np.save(tmp_path / "column.npy", np.array(x[:3])[:, None])
    for data in ("named.csv", "bare.csv", "column.npy"):
        capsys.readouterr()
        assert main(["predict", str(model), "--data", str(tmp_path / data)]) == 0
        printed = np.array(capsys.readouterr().out.split(), dtype=float)
        np.testing.assert_allclose(printed, expected, rtol=1e-12)


def test_version_prints_the_package_version(capsys):
    from convexnn._version import __version__

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"convexnn {__version__}"


@pytest.mark.parametrize("classes", [["1", "2", "x"], ["1.0", "2.0", "x"], ["007", "120", "x"]],
                         ids=["integer", "decimal", "zero-padded"])
def test_predict_and_certify_read_labels_as_the_model_has_them(tmp_path, capsys, classes):
    """Classes "1", "2", "x": a new file with only 1s and 2s reads its column as numbers,
    which must still be the model's labels "1" and "2" (scored, certified, a row without
    a target left out); "1.0" and "007" are the classes of the values 1.0 and 7, not
    str(1.0) or str(7)."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 2))
    labels = np.array(classes)[np.argmax(np.column_stack([X[:, 0], X[:, 1], -X.sum(1)]),
                                         axis=1)]
    _write_csv(tmp_path / "train.csv", X, labels)
    model = tmp_path / "m.npz"
    assert main(["fit", "--data", str(tmp_path / "train.csv"), "--beta", "0.01",
                 "--solver", "native", "--out", str(model)]) == 0
    numeric = labels != "x"
    _write_csv(tmp_path / "numbers.csv", X[numeric], labels[numeric])
    partial = labels[numeric].copy()
    partial[0] = ""
    _write_csv(tmp_path / "partial.csv", X[numeric], partial)
    capsys.readouterr()
    for target in ([], ["--target", "label"]):
        assert main(["predict", str(model), "--data", str(tmp_path / "numbers.csv"),
                     "--out", str(tmp_path / "p.csv"), *target]) == 0
        out = capsys.readouterr()
        assert "accuracy" in out.out and "not scored" not in out.err
    assert main(["predict", str(model), "--data", str(tmp_path / "partial.csv"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    assert f"on the {numeric.sum() - 1} of {numeric.sum()} rows" in capsys.readouterr().out
    assert main(["certify", str(model), "--data", str(tmp_path / "numbers.csv")]) == 0
    assert f"samples           {numeric.sum()}" in capsys.readouterr().out


def test_a_target_index_out_of_range_says_so_in_a_file_with_a_header(labelled, tmp_path,
                                                                    capsys):
    model = tmp_path / "m.npz"
    assert main(["fit", "--data", str(labelled["train"]), "--beta", "0.5",
                 "--solver", "native", "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), "--data", str(labelled["train"]),
                 "--target", "9"]) == 2
    assert "--target 9 is out of range" in capsys.readouterr().err


def test_a_column_the_model_does_not_use_is_not_read(labelled, tmp_path, capsys):
    """An id column of text beside the model's named columns: predicted and certified as
    without it."""
    X, labels = labelled["X"], labelled["labels"]
    model = tmp_path / "m.npz"
    assert main(["fit", "--data", str(labelled["train"]), "--beta", "0.5",
                 "--solver", "native", "--out", str(model)]) == 0
    rows = ["name,f2,f0,f1,label"] + [
        f"s{i},{float(X[i, 2])!r},{float(X[i, 0])!r},{float(X[i, 1])!r},{labels[i]}"
        for i in range(len(X))]
    (tmp_path / "named.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "unlabelled.csv").write_text(
        "\n".join(row.rsplit(",", 1)[0] for row in rows) + "\n")
    capsys.readouterr()
    assert main(["predict", str(model), "--data", str(labelled["train"]),
                 "--out", str(tmp_path / "reference.csv")]) == 0
    assert main(["predict", str(model), "--data", str(tmp_path / "named.csv"),
                 "--target", "label", "--out", str(tmp_path / "p.csv")]) == 0
    assert (tmp_path / "p.csv").read_text() == (tmp_path / "reference.csv").read_text()
    assert main(["certify", str(model), "--data", str(tmp_path / "named.csv"),
                 "--target", "label"]) == 0
    assert "samples           60" in capsys.readouterr().out
    assert main(["predict", str(model), "--data", str(tmp_path / "unlabelled.csv"),
                 "--target", "name", "--out", str(tmp_path / "q.csv")]) == 0
    assert (tmp_path / "q.csv").read_text() == (tmp_path / "reference.csv").read_text()


def test_loader_advice_is_given_in_command_line_words(tmp_path, capsys):
    """Options only Python has (x_key=, header=True, labels_path=) are not advised."""
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "positional.npz", rng.normal(size=(10, 2)), rng.normal(size=10))
    (tmp_path / "year.csv").write_text("a,2020,label\n1,2,x\n3,4,y\n5,6,x\n")
    (tmp_path / "lonely-images-idx3-ubyte").write_bytes(b"")
    np.savez(tmp_path / "xy.npz", X=rng.normal(size=(10, 2)), y=rng.normal(size=10))
    (tmp_path / "huge.csv").write_text("a,b,y\n1e200,2,1\n3,4,2\n5,6,3\n")
    for argv, said in ((["--target", "0"], "an .npz file's targets are its array y"),
                       ([], "e.g. standardise the file's columns")):
        data = "xy.npz" if argv else "huge.csv"
        assert main(["fit", "--data", str(tmp_path / data), *argv, "--out",
                     str(tmp_path / "m.npz")]) == 2
        err = capsys.readouterr().err
        assert said in err and "x_key" not in err and "sklearn" not in err, err
    for data, said in (("positional.npz", "np.savez(file, X=..., y=...)"),
                       ("year.csv", "rename its column names that read as numbers"),
                       ("lonely-images-idx3-ubyte", "named as MNIST's are")):
        assert main(["fit", "--data", str(tmp_path / data), "--out",
                     str(tmp_path / "m.npz")]) == 2
        err = capsys.readouterr().err
        assert said in err, err
        assert not re.search(r"x_key=|header=True|labels_path=", err), err


def test_a_file_without_a_header_is_read_as_the_training_file_was(labelled, tmp_path, capsys):
    """Fitted with the target first: a file of the same columns without a header takes
    its first column for the target, not its last (which was a feature)."""
    from convexnn import ConvexPolyRegressor

    X = labelled["X"]
    y = X[:, 0] ** 2 - X[:, 1]
    rows = [",".join(repr(float(v)) for v in (y[i], *X[i])) for i in range(len(X))]
    (tmp_path / "train.csv").write_text("price,f0,f1,f2\n" + "\n".join(rows) + "\n")
    (tmp_path / "plain.csv").write_text("\n".join(rows) + "\n")
    model = tmp_path / "m.npz"
    assert main(["fit", "--data", str(tmp_path / "train.csv"), "--target", "price",
                 "--beta", "0.01", "--solver", "native", "--out", str(model)]) == 0
    fitted = ConvexPolyRegressor.load(model)
    expected = fitted.predict(_frame(X))
    capsys.readouterr()
    assert main(["predict", str(model), "--data", str(tmp_path / "plain.csv"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    score = float(capsys.readouterr().out.split("R^2")[1])
    assert score == pytest.approx(fitted.score(_frame(X), y), abs=1e-4)  # (it was -21)
    written = np.loadtxt(tmp_path / "p.csv", skiprows=1)
    np.testing.assert_allclose(written, expected, rtol=1e-12)
    assert main(["certify", str(model), "--data", str(tmp_path / "plain.csv")]) == 0
    assert float(_fields(capsys.readouterr().out)["certified gap"].split("relative ")[1]
                 .rstrip(")")) < 1e-3


@pytest.mark.filterwarnings("default::convexnn.exceptions.ConvexNNWarning")
def test_the_advice_to_tighten_a_non_smooth_bound_is_the_command_lines(labelled, tmp_path,
                                                                         capsys):
    model = tmp_path / "m.npz"
    assert main(["fit", "--data", str(labelled["train"]), "--loss", "hinge", "--beta", "0.5",
                 "--solver", "clarabel", "--out", str(model)]) == 0
    X, labels = labelled["X"], labelled["labels"]
    _write_csv(tmp_path / "held_out.csv", X[:30] + 0.5, labels[:30])
    capsys.readouterr()
    assert main(["certify", str(model), "--data", str(tmp_path / "held_out.csv")]) == 0
    err = capsys.readouterr().err
    assert "hinge loss is not smooth" in err and "--tighten" in err, err
    assert "dual_points" not in err and "tighten=True" not in err, err


def test_predict_warns_when_it_takes_another_column_than_the_fitted_target(tmp_path, capsys):
    """A regressor scored against an id column beside its features, without a word."""
    t = planted_teacher(n=30, d=2, seed=3)
    _write_csv(tmp_path / "train.csv", t.X, t.y)
    assert main(["fit", "--data", str(tmp_path / "train.csv"), "--task", "regression",
                 "--out", str(tmp_path / "m.npz")]) == 0
    (tmp_path / "new.csv").write_text("f0,f1,id\n" + "".join(
        f"{a!r},{b!r},{i}\n" for i, (a, b) in enumerate(t.X.tolist())))
    (tmp_path / "same.csv").write_text((tmp_path / "train.csv").read_text())
    capsys.readouterr()
    for data, warned in (("new.csv", True), ("same.csv", False)):
        assert main(["predict", str(tmp_path / "m.npz"), "--data", str(tmp_path / data),
                     "--out", str(tmp_path / "p.csv")]) == 0
        err = capsys.readouterr().err
        assert ("the column 'id' is taken for the target, but the model was fitted with the "
                "target 'label'" in err) == warned, data


def test_path_and_cv_leave_no_output_folder_when_they_refuse_their_arguments(tmp_path, capsys):
    # (the estimator checks --eps only in its fit, after the folder was made)
    for command in (["path", "--test-size", "1.5"], ["cv", "--folds", "1"],
                    ["path", "--eps", "5"]):
        out = tmp_path / command[0] / "deeper"
        assert main([command[0], "--dataset", "iris", *command[1:], "--out", str(out)]) == 2
        assert "convexnn: error" in capsys.readouterr().err
        assert not (tmp_path / command[0]).exists()


def test_certify_says_where_targets_come_from_in_each_format(tmp_path, capsys):
    X = np.random.default_rng(4).normal(size=(20, 2))
    np.savez(tmp_path / "train.npz", X=X, y=(X[:, 0] > 0).astype(int))
    np.savez(tmp_path / "no_y.npz", X=X[:5])
    _write_csv(tmp_path / "no_y.csv", X[:5])
    assert main(["fit", "--data", str(tmp_path / "train.npz"),
                 "--out", str(tmp_path / "m.npz")]) == 0
    for data, where in (("no_y.npz", "an array y in the file"),
                        ("no_y.csv", "a target column (--target)")):
        capsys.readouterr()
        assert main(["certify", str(tmp_path / "m.npz"), "--data", str(tmp_path / data)]) == 2
        assert f"has no targets; certify needs them: {where}" in capsys.readouterr().err
