"""The model commands of the command line: ``fit``, ``predict``, ``certify``, ``path``, ``cv``.

``convexnn fit``      fit an estimator on a data file (``--cv``: choose beta by
                      cross-validation) and save it to a portable ``.npz``
``convexnn predict``  predictions of a saved model on a data file
``convexnn certify``  objective, certified lower bound and gap of a saved
                      model on a data file
``convexnn path``     the regularisation path on a training split, scored on a
                      validation split: PNG + CSV (:func:`convexnn.plot_path`)
``convexnn cv``       the same with k-fold cross-validation

Data come from the same loaders as ``compare`` (:func:`convexnn.datasets.load_file`;
``path`` and ``cv`` also take ``--dataset``). Only the standard library and
numpy are imported at module level: building the parser must stay cheap
(``convexnn --help``); everything else is imported by the handlers.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from convexnn.datasets import DATASETS

#: ``fit``'s ``--beta`` when it is not given (the estimators' default).
DEFAULT_BETA = 0.1


# -- argument types -------------------------------------------------------------------
def _betas(text: str) -> int | list[float]:
    """``20`` (a number of grid points) or ``0.1,1,10`` (the values)."""
    try:
        if "," not in text and text.strip().isdigit():
            return int(text)
        return [float(part) for part in text.split(",")]  # "1,,2": a slip, not two values
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of betas or a comma-separated list of betas; got {text!r}"
        ) from None


#: Formats whose target is a column (``--target`` names it).
COLUMN_FORMATS = (".csv", ".tsv", ".txt", ".npy")


def _separator(text: str) -> str:
    """A ``--delimiter``: the characters given, with ``\\t`` or ``tab`` for a tab."""
    separator = "\t" if text in ("\\t", "tab") else text
    if not separator:
        raise argparse.ArgumentTypeError("expected one or more characters, e.g. ';' or '\\t'")
    return separator


def _column(text: str | None) -> int | str | None:
    """A target column: an index or a header name."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return text


# -- data -------------------------------------------------------------------------------
def load_data(
    args: argparse.Namespace, read_as: dict[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(X, y, name)`` from ``--data`` (with ``--target``) or ``--dataset`` (all its samples).

    ``read_as``: loader options for the file (:func:`_read_as`'s, by default).
    """
    from convexnn.exceptions import ValidationError

    if getattr(args, "dataset", None) is not None:
        from convexnn.datasets import load_dataset

        for option in ("target", "delimiter"):
            if getattr(args, option, None) is not None:
                raise ValidationError(f"--{option} applies to --data files, not to --dataset")
        data = load_dataset(args.dataset, standardize=False)
        X = np.concatenate([data.X_train, data.X_test])
        return X, np.concatenate([data.y_train, data.y_test]), args.dataset
    from convexnn.datasets import load_file

    options = _read_as(args.data) if read_as is None else read_as
    X, y = load_file(args.data, target=_column(args.target), **options, **_text_options(args))
    return X, y, Path(args.data).name.split(".")[0] or "data"


def _read_as(path: str, recorded: dict[str, Any] | None = None) -> dict[str, Any]:
    """Loader options for ``path``: an svmlight file is read zero-based or not as
    ``recorded`` (a model's training file) says, else by scikit-learn's rule."""
    from convexnn.datasets._files import file_format
    from convexnn.datasets._svmlight import svmlight_zero_based

    if file_format(path) != "svmlight":
        return {}
    if recorded is not None and "svmlight_zero_based" in recorded:
        return {"zero_based": bool(recorded["svmlight_zero_based"])}
    return {"zero_based": svmlight_zero_based(path)}


def _header(args: argparse.Namespace) -> list[str] | None:
    """The column names of ``--data`` when it is a text file with a header row, else
    ``None``."""
    from convexnn.datasets._text import csv_header

    delimiter = _delimiter(args)
    names = csv_header(args.data, delimiter) if delimiter is not None else None
    repeated = sorted({name for name in names or () if names.count(name) > 1})
    if repeated:
        from convexnn.exceptions import ValidationError

        raise ValidationError(f"{args.data}: the header names the column(s) {repeated} more "
                              "than once; every column needs its own name")
    return names


def _delimiter(args: argparse.Namespace) -> str | None:
    """The field separator of ``--data``: ``--delimiter``, else the one its extension
    implies; ``None`` for a file that is not delimited text."""
    from convexnn.datasets._files import TEXT_DELIMITERS, file_format
    from convexnn.exceptions import ValidationError

    given = getattr(args, "delimiter", None)
    kind = file_format(args.data)
    if kind not in TEXT_DELIMITERS:
        if given is not None:
            raise ValidationError(f"--delimiter applies to delimited text files (.csv, .tsv, "
                                  f".txt), not to {args.data}")
        return None
    return TEXT_DELIMITERS[kind] if given is None else given


def _text_options(args: argparse.Namespace) -> dict[str, Any]:
    """The loader's ``delimiter`` for a text ``--data`` file, else nothing."""
    delimiter = _delimiter(args)
    return {} if delimiter is None else {"delimiter": delimiter}


def _named(X: np.ndarray, names: list[str] | None) -> Any:
    """``X`` as a DataFrame with the feature names (what the estimator records), or as is."""
    if names is None:
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=names)


def _training_data(
    args: argparse.Namespace, read_as: dict[str, Any]
) -> tuple[Any, np.ndarray, str]:
    """:func:`load_data`, with a header's feature names on ``X`` (a DataFrame) so that the
    saved model finds its columns by name in the files it later predicts on."""
    X, y, name = load_data(args, read_as)
    names = _header(args) if getattr(args, "data", None) is not None else None
    if names is not None:
        target = _column(args.target)
        target = names[int(target)] if isinstance(target, int) else target or names[-1]
        names = [column for column in names if column != target]
    return _named(X, names), y, name


def _column_layout(args: argparse.Namespace, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Where the target column of a text ``--data`` file is, ``{"target_column": index}``
    and, with a header, ``"target_name"`` (``{}`` for other files), so that a file of the
    same columns is read the same way (:func:`_read_features`)."""
    if getattr(args, "data", None) is None or _delimiter(args) is None or y.ndim != 1:
        return {}
    columns = X.shape[1] + 1  # every other column is a feature
    target = _column(args.target)
    header = _header(args)
    if isinstance(target, str):
        target = (header or []).index(target)
    layout: dict[str, Any] = {"target_column": columns - 1 if target is None else target % columns}
    if header is not None:
        layout["target_name"] = header[layout["target_column"]]
    return layout


def _features_for(
    model: Any, args: argparse.Namespace, unlabelled_rows: bool = False
) -> tuple[Any, np.ndarray | None]:
    """Features (and targets, when there is a target column) of ``--data`` for ``model``
    (see :func:`_read_features`), labels read as the model's own kind of labels."""
    X, y = _read_features(model, args, unlabelled_rows)
    return X, _as_model_labels(model, y)


def _as_model_labels(model: Any, y: np.ndarray | None) -> np.ndarray | None:
    """``y`` as the model's string classes where those are strings: a file reads a
    target column as numbers when every cell is one, so the labels "1", "2" of a model
    with the classes "1", "2", "x" come back as the numbers 1, 2 from a file without an
    "x". A number becomes the class of that value ("1.0", "007" included); missing
    targets (NaN) become ``""``, as in a column of labels."""
    classes = getattr(model, "classes_", None)
    if (y is None or classes is None or y.dtype.kind not in "biuf"
            or not all(isinstance(label, str) for label in classes.tolist())):
        return y
    by_value: dict[float, list[str]] = {}
    for label in classes.tolist():
        value = _number(label)
        if value is not None:
            by_value.setdefault(value, []).append(label)

    def label_of(value: float) -> str:
        if value != value:  # NaN: no target
            return ""
        matches = by_value.get(value, [])
        # (no class of this value, or two: "1" and "1.0": its text, refused as unknown)
        return matches[0] if len(matches) == 1 else str(value)

    return np.array([label_of(value) for value in y.tolist()], dtype=object).astype(str)


def _number(text: str) -> float | None:
    """The number ``text`` writes (an int exactly), else ``None``."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return None


def _read_features(
    model: Any, args: argparse.Namespace, unlabelled_rows: bool
) -> tuple[Any, np.ndarray | None]:
    """Features (and targets, when there is a target column) of ``--data`` for ``model``.

    A model fitted on a file with a header finds its feature columns by name
    in a file with a header (in any order); the target is ``--target`` or the
    one remaining column. Otherwise ``--target`` names the target column,
    which is dropped; without it, when the file has one column more than the
    model's features, the target is the column where the training file had it
    (as ``fit`` recorded it; the last one for a model saved in Python), and
    when it has exactly as many, every column is a feature. Formats without
    columns (svmlight, IDX, .npz) keep their own targets, if they have any
    (IDX images without a labels file and an .npz without ``y`` are features
    only). With ``unlabelled_rows``, empty cells of a text file's target
    column are read as NaN or ``""`` (see :func:`labelled`) instead of refused.
    """
    from convexnn._persistence import saved_data_format
    from convexnn.datasets import load_csv, load_file, load_idx, load_numpy
    from convexnn.datasets._files import file_format, idx_labels_for
    from convexnn.datasets._npy import npy_width
    from convexnn.datasets._text import csv_width
    from convexnn.exceptions import ValidationError

    features = getattr(model, "feature_names_in_", None)
    recorded = saved_data_format(args.model)  # how the training file was laid out
    names = _header(args)
    kind = file_format(args.data)
    text = _text_options(args)
    delimiter = text.get("delimiter")
    partial = {**text, "allow_missing_target": True} if unlabelled_rows and text else text
    if features is not None and names is not None:
        return _by_name(args, list(features), names, partial, recorded.get("target_name"))
    if kind in ("svmlight", "idx") and args.target is not None:
        raise ValidationError(f"--target applies to CSV and .npy files, not to {args.data}: "
                              "its labels are the file's own")
    if kind == "svmlight":  # trailing all-zero features are not in the file
        X, y = load_file(args.data, n_features=model.n_features_in_,
                         **_read_as(args.data, recorded))
        return _named(X, features), y
    if kind == "idx":  # images without a labels file are features only
        X, y = load_idx(args.data, idx_labels_for(args.data))
        return _named(X, features), y
    if kind == ".npz" and args.target is None:
        try:
            # (our own handle: np.load leaves a file it opened unclosed when it fails)
            with open(args.data, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
                unlabelled = "y" not in archive.files
        except Exception:  # noqa: BLE001 - not an archive: load_file says what it is
            unlabelled = False
        if unlabelled:
            return _named(load_numpy(args.data, y_key=None)[0], features), None
    wanted = model.n_features_in_
    target = _column(args.target)
    if target is None and delimiter is not None:
        width = csv_width(args.data, delimiter)
        if width == wanted:  # a file of the model's width is features only
            return _named(load_csv(args.data, target=None, delimiter=delimiter)[0],
                          features), None
        if width == wanted + 1:  # the target where the training file had it
            column = recorded.get("target_column")
            target = column if isinstance(column, int) else None
    if target is None and kind == ".npy" and npy_width(args.data) == wanted:
        return _named(load_numpy(args.data, y_key=None)[0], features), None
    X, y = load_file(args.data, target=target, **partial)
    if args.target is None and kind in COLUMN_FORMATS and y.ndim == 1:
        columns = X.shape[1] + 1
        if columns != wanted + 1:
            raise ValidationError(
                f"{args.data} has {columns} columns; the model takes {wanted} features "
                f"({wanted + 1} columns with a target column)"
            )
    return _named(X, features), y


def labelled(y: np.ndarray) -> np.ndarray:
    """Rows of ``y`` with a target: not NaN (numbers), not ``""`` (labels), in every column
    of a 2-D ``y``."""
    present = ~np.isnan(y) if y.dtype.kind == "f" else y != ""
    return present.all(axis=1) if present.ndim == 2 else present


def _by_name(args: argparse.Namespace, features: list[str], names: list[str],
             read_as: dict[str, Any], fitted_target: str | None):
    """The model's feature columns of a file with a header, by name, and its target
    (``fitted_target``: the training file's target column, where it had a header)."""
    from convexnn.datasets import load_csv, load_file
    from convexnn.exceptions import ValidationError

    missing = [name for name in features if name not in names]
    if missing:
        hint = "" if len(names) > 1 else " (one column: is --delimiter right?)"
        raise ValidationError(
            f"{args.data} has no column(s) {missing}, which the model was fitted on; its "
            f"columns: {names}{hint}"
        )
    target = _column(args.target)
    if isinstance(target, int):
        if not -len(names) <= target < len(names):
            raise ValidationError(f"--target {target} is out of range: {args.data} has "
                                  f"{len(names)} columns")
        target = names[target]
    if target in features:
        raise ValidationError(f"--target {target} is one of the model's feature columns")
    others = [name for name in names if name not in features]
    if target is None and len(others) > 1:
        raise ValidationError(
            f"{args.data} has the columns {others} besides the model's features; name the "
            "target with --target"
        )
    if target is None and others:
        if fitted_target is not None and others[0] != fitted_target:  # an id or a note, say
            import warnings

            from convexnn.exceptions import ConvexNNWarning

            warnings.warn(f"{args.data}: the column {others[0]!r} is taken for the target, but "
                          f"the model was fitted with the target {fitted_target!r}; name the "
                          "target with --target", ConvexNNWarning, stacklevel=1)
        target = others[0]
    # Only the model's columns are read: an id or a note beside them is not a feature.
    in_file_order = [name for name in names if name in features]
    if target is None:  # no target column
        X, y = load_csv(args.data, target=None, delimiter=_delimiter(args), columns=features)
    else:
        X, y = load_file(args.data, target=target, columns=features, **read_as)
    return _named(X[:, [in_file_order.index(name) for name in features]], features), y


def _is_classification(y: np.ndarray, args: argparse.Namespace) -> bool:
    """Whether ``--task`` (as ``compare`` decides it for ``auto``) makes a classifier, with
    the command line's own words where the task and the targets or ``--loss`` disagree
    (the estimators' messages name Python classes)."""
    from sklearn.utils.multiclass import type_of_target

    from convexnn.comparison._data import resolve_task
    from convexnn.exceptions import ValidationError
    from convexnn.losses import get_loss

    classification = resolve_task(y, args.task) == "classification"
    if classification and type_of_target(y) == "continuous":
        raise ValidationError(f"--task classification: the targets are real values (e.g. "
                              f"{float(y[0]):g}), not classes; use --task regression or auto")
    if not classification and y.dtype.kind in "OUS":
        raise ValidationError(f"--task regression: the targets are labels (e.g. {str(y[0])!r}), "
                              "not numbers; use --task classification or auto")
    if not classification and args.loss is not None and get_loss(args.loss).targets in (
            "sign", "onehot"):
        why = "--task regression" if args.task == "regression" else (
            "real values or many distinct integers: --task auto")
        raise ValidationError(f"--loss {args.loss} is a classification loss, but the "
                              f"targets are taken for a regression ({why}); pass --task "
                              "classification if they are classes")
    return classification


def output_folder(path: str | Path) -> Path:
    """``path`` as a folder for a command's files, created now: a long run must not end
    in an error about where to write."""
    from convexnn.exceptions import ValidationError

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValidationError(f"--out {folder} is a file; give a folder for the results")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValidationError(f"--out {folder}: cannot create the folder ({error})") from error
    check_writable(folder)
    return folder


def check_output_file(path: Path, inputs: dict[str, Any]) -> None:
    """Refuse an output file that cannot be written, before the run whose results go there:
    a folder, a file in a missing folder, a file (or a pipe, /dev/stdout) that is read-only,
    a new file in a folder that takes none, or one of the command's ``inputs`` (option name
    -> path), which writing would destroy."""
    from convexnn.exceptions import ValidationError

    if path.is_dir():
        raise ValidationError(f"--out {path} is a folder; give a file name")
    if path.exists():
        for option, source in inputs.items():
            if source is not None and Path(source).exists() and path.samefile(source):
                raise ValidationError(f"--out {path} is the {option} file; writing would "
                                      "overwrite it: give another name")
        if not os.access(path, os.W_OK):
            raise ValidationError(f"--out {path}: the file cannot be written")
        return
    if not path.parent.is_dir():
        raise ValidationError(f"--out {path}: the folder {path.parent} does not exist")
    check_writable(path.parent)


def check_writable(folder: Path) -> None:
    """Refuse a folder a file cannot be written to, before a run whose results go there."""
    import tempfile

    from convexnn.exceptions import ValidationError

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValidationError(f"--out: cannot write to the folder {folder} ({error})") from error


def _grid(args: argparse.Namespace) -> dict[str, Any]:
    """The grid options given on the command line (the CV estimator's defaults otherwise)."""
    return {name: getattr(args, name) for name in ("betas", "eps", "n_jobs")
            if getattr(args, name, None) is not None}


def _shuffled_folds(k: int, classification: bool, option: str) -> Any:
    """``k`` shuffled folds (stratified for a classification), seed 0: a file sorted by
    its target must not put one end of the range in each fold. ``option`` gave ``k``."""
    from sklearn.model_selection import KFold, StratifiedKFold

    from convexnn.exceptions import ValidationError

    if k < 2:
        raise ValidationError(f"{option} must be a number of folds, at least 2; got {k}")
    return (StratifiedKFold if classification else KFold)(k, shuffle=True, random_state=0)


def _solver_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--time-limit``, ``--tol`` and ``--max-iter``, those given."""
    given = {name: getattr(args, name) for name in ("time_limit", "tol", "max_iter")
             if getattr(args, name) is not None}
    return given or None


# -- reporting ----------------------------------------------------------------------------
def print_result(result: Any, seconds: float, n_neurons: int) -> None:
    """The solve's solver, status, objective, certified bound and gap, and width."""
    print(f"solver            {result.solver} ({result.status}), {seconds:.2f} s")
    print_certificate(result)
    print(f"neurons           {n_neurons}")


def print_certificate(certificate: Any) -> None:
    """Objective, certified lower bound and gap (of a result or a certificate)."""
    print(f"objective         {certificate.objective:.8g}")
    print(f"lower bound       {certificate.lower_bound + 0.0:.8g}")  # never "-0"
    print(f"certified gap     {certificate.duality_gap:.3g} "
          f"(relative {certificate.relative_gap:.2e})")


def _metric(model: Any, scoring: str | None = None) -> str:
    if scoring is not None:
        return scoring
    return "accuracy" if hasattr(model, "classes_") else "R^2"


# -- the commands ---------------------------------------------------------------------------
def fit_command(args: argparse.Namespace) -> int:
    import convexnn as cnn
    from convexnn._persistence import save_estimator
    from convexnn.exceptions import ValidationError
    from convexnn.network import npz_path

    if args.cv is not None and args.beta is not None:
        raise ValidationError("--beta and --cv exclude each other: --cv chooses beta")
    if args.cv is None and _grid(args):
        raise ValidationError(f"--{'/--'.join(_grid(args)).replace('_', '-')} apply with --cv "
                              "only (without it, fit solves at --beta)")
    out = npz_path(args.out)  # a folder that does not exist is an error before the solve
    check_output_file(out, {"--data": getattr(args, "data", None)})
    read_as = _read_as(args.data) if getattr(args, "data", None) is not None else {}
    X, y, _ = _training_data(args, read_as)
    layout = {"svmlight_zero_based": read_as["zero_based"]} if read_as else {}
    layout.update(_column_layout(args, X, y))  # (now: the file may change during the fit)
    classification = _is_classification(y, args)
    common = dict(activation=args.activation, loss=args.loss, solver=args.solver,
                  solver_options=_solver_options(args))
    if args.cv is not None:
        cls = cnn.ConvexPolyClassifierCV if classification else cnn.ConvexPolyRegressorCV
        model = cls(cv=_shuffled_folds(args.cv, classification, "--cv"), **_grid(args), **common)
    else:
        cls = cnn.ConvexPolyClassifier if classification else cnn.ConvexPolyRegressor
        model = cls(beta=DEFAULT_BETA if args.beta is None else args.beta, **common)
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    # Before any output: a closed pipe must not lose the model.
    saved = model.to_estimator() if args.cv is not None else model  # the refitted model
    path = save_estimator(saved, out, data_format=layout or None)
    if args.cv is not None:
        print(f"model             {cls._plain_estimator.__name__}, beta {model.beta_:.6g} chosen "
              f"by {model.n_splits_}-fold CV over {len(model.betas_)} betas "
              f"(mean validation {_metric(model)} {model.best_score_:.4f})")
        skipped = int((~np.isfinite(model.scores_path_)).sum())
        if skipped:
            print(f"path points       {skipped} of {model.scores_path_.size} failed or stopped "
                  "early, skipped")
        print(f"cross-validation  {seconds:.2f} s in all ({model.scores_path_.size} path "
              "points and the refit)")
        seconds = model.result_.solve_time  # the refit's back-end time
    else:
        print(f"model             {cls.__name__}, beta {model.beta:g}")
    print_result(model.result_, seconds, model.network_.n_neurons)
    print(f"training score    {_metric(model)} {model.score(X, y):.4f}")
    print(f"wrote {path}")
    return 0


def predict_command(args: argparse.Namespace) -> int:
    from convexnn._persistence import load_saved_estimator
    from convexnn.exceptions import ValidationError

    if args.out is not None:  # before any work: a long prediction must not end in an error
        check_output_file(Path(args.out), {"--data": args.data, "model": args.model})
    model = load_saved_estimator(args.model)
    X, y = _features_for(model, args, unlabelled_rows=True)
    predictions = model.predict(X)
    score = None
    scored = labelled(y) if y is not None else None
    if scored is not None and scored.any() and args.out is not None:
        try:
            classes = getattr(model, "classes_", None)
            values = np.unique(y[scored])
            unknown = [] if classes is None else values[~np.isin(values, classes)]
            if len(unknown) and args.target is None:  # an id or a count, not labels
                raise ValueError(f"{len(unknown)} of its values (e.g. {unknown[0].item()!r}) "
                                 f"are not among the model's classes {classes.tolist()}")
            score = model.score(X[scored], y[scored])  # (a boolean mask selects rows)
        except ValueError as error:  # targets of another kind than the model's
            if args.target is not None:
                raise ValidationError(
                    f"--target {args.target} of {args.data} does not suit the model: {error}"
                ) from error
            # A column taken for the target by position (an id, a note): the predictions
            # were asked for, not a score.
            import warnings

            from convexnn.datasets._files import file_format
            from convexnn.exceptions import ConvexNNWarning

            columns = file_format(args.data) in COLUMN_FORMATS
            warnings.warn(f"not scored: the {'column' if columns else 'labels'} of {args.data} "
                          f"taken for the target {'does' if columns else 'do'} not suit the "
                          f"model ({error})" + ("; name the target with --target" if columns
                                                else ""),
                          ConvexNNWarning, stacklevel=1)
    table = predictions.reshape(len(predictions), -1).tolist()
    if args.out is None:
        # The csv module quotes labels that hold the delimiter or quotes ("Smith, John").
        csv.writer(sys.stdout, lineterminator="\n").writerows(table)
        return 0
    columns = 1 if predictions.ndim == 1 else predictions.shape[1]
    names = ["prediction"] if columns == 1 else [f"prediction_{k}" for k in range(columns)]
    with open(args.out, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(table)
    print(f"wrote {len(predictions)} predictions to {args.out}")
    if score is not None:
        rows = "" if scored.all() else f" (on the {scored.sum()} of {len(y)} rows with a target)"
        print(f"{_metric(model)} {score:.4f}{rows}")
    return 0


def certify_command(args: argparse.Namespace) -> int:
    from convexnn._persistence import load_saved_estimator
    from convexnn.exceptions import ValidationError
    from convexnn.losses import get_loss

    model = load_saved_estimator(args.model)
    X, y = _features_for(model, args)
    if y is None:
        from convexnn.datasets._files import file_format

        where = {".npz": "an array y in the file",
                 "idx": "a labels file beside the images (train-images-idx3-ubyte -> "
                        "train-labels-idx1-ubyte)"}.get(file_format(args.data),
                                                         "a target column (--target)")
        raise ValidationError(f"{args.data} has no targets; certify needs them: {where}")
    certificate = model.certify(X, y, tighten=args.tighten)
    print(f"model             {type(model).__name__}, beta {model.beta:g}, "
          f"{get_loss(model.loss).name} loss, {model.network_.n_neurons} neurons")
    print(f"samples           {len(X)}")
    print_certificate(certificate)
    tol = model.result_.tol
    if model.result_.status == "optimal" and tol is not None and certificate.relative_gap > tol:
        print("note              the model is optimal for the data it was fitted on; on other "
              "data (e.g. held out) a large gap is expected"
              + ("" if args.tighten else " (--tighten bounds it more tightly)"))
    return 0


def path_command(args: argparse.Namespace) -> int:
    """``path`` (one validation split) and ``cv`` (k folds): fit, plot, tabulate."""
    import convexnn as cnn
    from convexnn.datasets import standardize
    from convexnn.exceptions import ValidationError

    X, y, name = load_data(args)
    classification = _is_classification(y, args)
    if args.standardize:
        X = standardize(X).X_train
    if args.command == "path":
        from sklearn.model_selection import train_test_split

        if not 0 < args.test_size < 1:
            raise ValidationError(f"--test-size must be a fraction in (0, 1); got {args.test_size}")
        if args.random_state < 0:
            raise ValidationError(f"--random-state must be >= 0; got {args.random_state}")
        try:
            train, test = train_test_split(
                np.arange(len(X)), test_size=args.test_size, random_state=args.random_state,
                stratify=y if classification else None,
            )
        except ValueError as error:  # e.g. a class with one sample cannot be stratified
            raise ValidationError(f"cannot split {name} for validation: {error}") from error
        cv: Any = [(train, test)]
    else:
        cv = _shuffled_folds(args.folds, classification, "--folds")
    folder = Path(args.out) if args.out is not None else Path(f"{args.command}-results") / name
    created = [path for path in (folder, *folder.parents) if not path.exists()]
    out = output_folder(folder)
    try:
        for suffix in (".png", ".csv"):  # the files plot_path writes there
            check_output_file(out / f"{args.command}{suffix}",
                              {"--data": getattr(args, "data", None)})
        cls = cnn.ConvexPolyClassifierCV if classification else cnn.ConvexPolyRegressorCV
        model = cls(cv=cv, refit=False, **_grid(args),
                    activation=args.activation, loss=args.loss, solver=args.solver,
                    solver_options=_solver_options(args))
        model.fit(X, y)
    except BaseException:
        # A refused or failed command leaves behind no folder of its own making (the
        # estimator checks its parameters only in fit, after the folder was made).
        for path in created:  # deepest first; one holding anything stays
            try:
                path.rmdir()
            except OSError:
                break
        raise
    paths = cnn.plot_path(model, out / args.command)
    curves = cnn.PathCurves.of(model)
    print(f"| beta | {curves.scoring} | training objective | neurons | certified gap | "
          "solved folds |")
    print("|---|---|---|---|---|---|")
    for i, beta in enumerate(curves.betas):
        mark = " (beta_)" if beta == curves.beta else ""
        print(f"| {beta:.4g}{mark} | {curves.scores[i]:.4f} | {curves.objectives[i]:.6g} | "
              f"{curves.n_neurons[i]:.3g} | {curves.relative_gaps[i]:.1e} | "
              f"{curves.usable_folds[i]}/{curves.n_folds} |")
    print(f"beta_ = {model.beta_:.6g}; wrote {paths['png'].name}, {paths['csv'].name} to {out}/")
    standardised = " (chosen here on standardised features)" if args.standardize else ""
    if args.command == "cv":
        print("to fit a model: `convexnn fit --cv` chooses beta by the same folds and saves "
              f"the model, on the features as the file has them{standardised}")
    else:
        print(f"to fit a model at it: `convexnn fit --beta {model.beta_:.6g}`{standardised}")
    return 0


# -- the parser ---------------------------------------------------------------------------------
def add_model_commands(commands: Any, common: argparse.ArgumentParser, activation: Any) -> None:
    """Add ``fit``, ``predict``, ``certify``, ``path`` and ``cv`` to the sub-parsers ``commands``.

    ``activation`` is the ``--activation`` argument type of the main parser.
    """
    def model_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--task", default="auto",
                            choices=("auto", "classification", "regression"),
                            help="classification or regression (default: auto, from the targets)")
        parser.add_argument("--loss", default="squared",
                            help="loss (default: squared); e.g. logistic, hinge, huber")
        parser.add_argument(
            "--activation", type=activation, default="relu-approx",
            help="relu-approx, quadratic or a,b,c for a t^2 + b t + c (default: relu-approx)",
        )
        parser.add_argument("--solver", default="auto",
                            help="back-end name or 'auto' (see 'convexnn solvers')")
        parser.add_argument("--time-limit", type=float, default=None,
                            help="seconds per convex solve (default: none)")
        parser.add_argument("--tol", type=float, default=None,
                            help="certified relative gap to reach (default: the solver's, "
                            "1e-6 for most)")
        parser.add_argument("--max-iter", type=int, default=None,
                            help="iteration limit of the solver (default: the solver's)")

    def grid_options(parser: argparse.ArgumentParser, *, folds: bool = True) -> None:
        parser.add_argument("--betas", type=_betas, default=None,
                            help="a number of betas log-spaced from beta_max down to eps * "
                            "beta_max, or a list such as 0.1,1,10 (default: 20)")
        parser.add_argument("--eps", type=float, default=None,
                            help="smallest over largest beta of the grid (default: 1e-3)")
        if folds:  # `path` solves one split: nothing to run in parallel
            parser.add_argument("--n-jobs", type=int, default=None,
                                help="folds solved in parallel (default: 1; -1: every core)")

    def data_file(parser: argparse.ArgumentParser, *, datasets: bool = False,
                  target_default: str = "the last column") -> None:
        if datasets:
            source = parser.add_mutually_exclusive_group(required=True)
            source.add_argument(
                "--dataset", type=lambda text: text.strip().lower().replace("_", "-"),
                choices=DATASETS, help="an embedded data set: " + ", ".join(DATASETS),
            )
            source.add_argument("--data", metavar="FILE",
                                help="a data file: CSV/TSV/text, .npy/.npz, svmlight, MNIST IDX")
        else:
            parser.add_argument("--data", metavar="FILE", required=True,
                                help="a data file: CSV/TSV/text, .npy/.npz, svmlight, MNIST IDX")
        parser.add_argument("--target", metavar="COL",
                            help="target column of a CSV / .npy file: index or header name "
                            f"(default: {target_default})")
        parser.add_argument("--delimiter", type=_separator, metavar="SEP",
                            help="field separator of a text file, e.g. ';' or '\\t'; longer "
                            "than one character, a regular expression (default: ',' for .csv, "
                            "tab for .tsv, whitespace for .txt)")

    fit = commands.add_parser(
        "fit", parents=[common], help="fit a model on a data file and save it",
        description="Fit a convex network on a data file (features as given: standardise "
        "them first if their scales differ) and write it to a portable .npz file.",
    )
    data_file(fit)
    fit.add_argument("--out", metavar="MODEL", required=True, help="the model file (.npz)")
    fit.add_argument("--cv", type=int, nargs="?", const=5, default=None, metavar="K",
                     help="choose beta by K-fold cross-validation on the path (default K: 5; "
                     "shuffled folds, seed 0)")
    fit.add_argument("--beta", type=float, default=None,
                     help=f"l1 penalty without --cv (default: {DEFAULT_BETA})")
    model_options(fit)
    grid_options(fit)
    fit.set_defaults(handler=fit_command)

    for name, handler, text in (
        ("predict", predict_command, "predictions of a saved model on a data file"),
        ("certify", certify_command,
         "objective, certified lower bound and gap of a saved model on a data file"),
    ):
        parser = commands.add_parser(name, parents=[common], help=text,
                                     description=text[0].upper() + text[1:] + ".")
        parser.add_argument("model", metavar="MODEL", help="a model file written by 'fit'")
        data_file(parser, target_default=(
            "by name where the model and the file have headers (the column that is not a "
            "feature); else, in a file with one column more than the model's features, the "
            "column of the training file's target; a file of as many columns is features "
            "only"))
        if name == "predict":
            parser.add_argument("--out", metavar="CSV",
                                help="write the predictions to this CSV, and print the "
                                "score where the file has targets (default: print the "
                                "predictions only)")
        else:
            parser.add_argument("--tighten", action="store_true",
                                help="also solve on this data for a tighter bound")
        parser.set_defaults(handler=handler)

    for name, text in (
        ("path", "the path on a training split, scored on a validation split"),
        ("cv", "the path on every fold of k-fold cross-validation"),
    ):
        parser = commands.add_parser(
            name, parents=[common], help=text + ": PNG + CSV",
            description=f"Solve {text} over a grid of betas, each point warm-started and "
            "certified; plot the validation score, the training objective and the number "
            f"of neurons against beta with beta_ marked; write {name}.png and {name}.csv.",
        )
        data_file(parser, datasets=True)
        model_options(parser)
        grid_options(parser, folds=name == "cv")
        if name == "path":
            parser.add_argument("--test-size", type=float, default=0.25,
                                help="validation fraction (default: 0.25)")
            parser.add_argument("--random-state", type=int, default=0,
                                help="seed of the split (default: 0)")
        else:
            parser.add_argument("--folds", type=int, default=5,
                                help="folds (default: 5; shuffled, seed 0)")
        parser.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=True,
                            help="standardise the features first (default: yes)")
        parser.add_argument("--out", metavar="DIR", default=None,
                            help=f"output folder (default: {name}-results/<data set>)")
        parser.set_defaults(handler=path_command)


__all__ = ["add_model_commands", "output_folder", "print_certificate", "print_result"]
