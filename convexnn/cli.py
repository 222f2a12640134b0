"""The ``convexnn`` command line.

``convexnn solvers``   table of back-ends and their state
``convexnn demo``      fit an embedded data set and report the certified optimum
``convexnn compare``   the convex optimum vs backprop on one data set: a table,
                       CSV / JSON and figures (see :mod:`convexnn.comparison`)
``convexnn fit``, ``predict``, ``certify``, ``path``, ``cv``
                       a model from a data file and what it gives, and the
                       choice of beta (see :mod:`convexnn._commands`)

Errors -- bad arguments included -- are reported as one line on stderr with
exit code 2 (``--debug``, before or after the command, shows the traceback);
a ``compare`` whose every method failed writes its report and exits with 1.
Output piped into a program that stops reading early (``| head``) ends the
command quietly (exit code 141, as for SIGPIPE).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convexnn._commands import add_model_commands, output_folder, print_result
from convexnn._version import __version__
from convexnn.datasets import DATASETS

logger = logging.getLogger("convexnn")


def _solvers_command(args: argparse.Namespace) -> int:
    from convexnn import solvers

    rows = [("solver", "installed", "licensed", "usable", "note")]
    for state in solvers.available():
        licensed = "n/a" if state.licensed is None else ("yes" if state.licensed else "NO")
        rows.append(
            (
                state.name,
                "yes" if state.installed else "no",
                licensed,
                "yes" if state.usable else "no",
                state.note,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    return 0


def _demo_command(args: argparse.Namespace) -> int:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from convexnn import ConvexPolyClassifier

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    start = time.perf_counter()
    model = ConvexPolyClassifier(beta=args.beta, solver=args.solver).fit(X_train, y_train)
    elapsed = time.perf_counter() - start
    # Printed after the fit, which checks beta and the solver: no banner before an error.
    print(
        f"breast cancer: {len(X_train)} training / {len(X_test)} test samples, "
        f"{X.shape[1]} features; activation relu-approx, beta={args.beta}, squared loss"
    )
    print_result(model.result_, elapsed, model.network_.n_neurons)
    baseline = LogisticRegression(max_iter=1000).fit(X_train, y_train)
    print(
        f"test accuracy     convex network {model.score(X_test, y_test):.4f}, "
        f"logistic regression {baseline.score(X_test, y_test):.4f}"
    )
    return 0


def _activation(text: str) -> str | tuple[float, float, float]:
    """A preset name, or ``a,b,c``."""
    if "," not in text:
        return text
    parts = text.split(",")
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a preset name or three numbers a,b,c; got {text!r}"
        ) from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers a,b,c; got {text!r}")
    return values  # type: ignore[return-value]


def _seeds(text: str) -> int | list[int]:
    """``5`` (seeds 0..4) or ``0,3,7``."""
    try:
        if "," in text:
            return [int(part) for part in text.split(",") if part.strip()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seeds or a comma-separated list of seeds; got {text!r}"
        ) from None


def _test_size(text: str) -> int | float:
    """``0.25`` (a fraction) or ``40`` (a number of samples), as ``compare`` takes them."""
    try:
        return int(text) if text.strip().isdigit() else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction or a number of samples; got {text!r}"
        ) from None


def _number_or(convert: Callable[[str], Any], words: dict[str, Any], what: str):
    """An argparse type: a number (``convert``) or one of ``words`` (mapped to its value)."""
    names = "".join(f" or {word!r}" for word in words)

    def parse(text: str) -> Any:
        key = text.strip().lower()
        if key in words:
            return words[key]
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}{names}; got {text!r}") from None

    return parse


def _size(text: str) -> int | tuple[int, ...]:
    """``5`` or, for a non-square size or a shape, ``1,5`` (also ``1x5``)."""
    parts = text.lower().replace("x", ",").split(",")
    sizes = tuple(int(part) for part in parts if part.strip())  # a ValueError: not sizes
    if not sizes:
        raise ValueError(text)
    return sizes[0] if len(sizes) == 1 else sizes


_max_samples = _number_or(int, {"auto": "auto", "all": "all"}, "a number of samples")
_budget = _number_or(float, {"match": "match"}, "a number of seconds")
_pool_size = _number_or(_size, {"global": None}, "a window size (e.g. 2 or 1,4)")
_filter_size = _number_or(_size, {}, "a filter size (e.g. 3 or 1,5)")
_image_shape = _number_or(_size, {}, "an image shape (e.g. 28,28 or 3,32,32)")


def _compare_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from convexnn.comparison import compare
    from convexnn.comparison._records import FAILED
    from convexnn.datasets import load_file
    from convexnn.exceptions import ValidationError

    if args.data is not None:
        target: int | str | None = args.target
        if target is not None:
            try:
                target = int(target)
            except ValueError:
                pass  # a column name
        data = load_file(args.data, target=target)
        name = Path(args.data).name.split(".")[0] or "data"
    else:
        data = name = args.dataset
        if args.target is not None:
            raise ValidationError("--target applies to --data files, not to --dataset")
    # --time-limit 0 removes the default limit (compare drops options set to None).
    solver_options = None if args.time_limit is None else {"time_limit": args.time_limit or None}
    conv = None
    if args.filter_size is not None:
        conv = {"filter_size": args.filter_size, "stride": args.stride,
                "pool_size": args.pool_size, "image_shape": args.image_shape}
    elif args.pool_size is not None or args.stride != 1 or args.image_shape is not None:
        raise ValidationError("--pool-size, --stride and --image-shape apply to the "
                              "convolutional variant; give --filter-size too")
    out = output_folder(args.out if args.out is not None else Path("compare-results") / name)
    comparison = compare(
        data,
        solvers=args.solvers,
        optimizers=args.optimizers,
        seeds=args.seeds,
        loss=args.loss,
        beta=args.beta,
        activation=args.activation,
        width=args.width,
        epochs=args.epochs,
        objective=args.objective,
        max_samples=args.max_samples,
        test_size=args.test_size,
        random_state=args.random_state,
        task=args.task,
        progress=args.progress,
        solver_options=solver_options,
        name=name,
        tune_lr=args.tune_lr,
        budget=args.budget,
        conv=conv,
        standardize=args.standardize,
    )
    paths = comparison.save(out)
    print(comparison.to_markdown())
    print(f"wrote {', '.join(path.name for path in paths.values())} to {out}/")
    if all(record["status"] == FAILED for record in comparison.records):
        print("convexnn compare: every method failed (see the table's errors)", file=sys.stderr)
        return 1
    return 0


class _ArgumentError(Exception):
    """A command-line argument error (reported like every other error)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        if message.endswith("expected one argument"):
            # argparse reads a value such as "-1,2" as an option and reports the value as
            # missing, which hides what happened.
            message += " (if its value starts with '-', write it with '=': --option=-1)"
        raise _ArgumentError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="convexnn",
        description="Globally optimal two-layer polynomial-activation networks.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    parser.add_argument("--version", action="version", version=f"convexnn {__version__}")
    # The same flags after the command; SUPPRESS keeps the values given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "solvers", help="list solver back-ends and their state", parents=[common]
    ).set_defaults(handler=_solvers_command)
    demo = commands.add_parser(
        "demo", help="fit an embedded data set and report the optimum", parents=[common]
    )
    demo.add_argument("--solver", default="auto", help="back-end name or 'auto'")
    demo.add_argument("--beta", type=float, default=1.0, help="l1 penalty strength (default: 1.0)")
    demo.set_defaults(handler=_demo_command)

    compare = commands.add_parser(
        "compare",
        parents=[common],
        help="the convex optimum vs backprop on one data set",
        description=(
            "Train the same two-layer polynomial-activation network by the convex program "
            "(each solver once) and by backprop (each optimizer once per seed) on the same "
            "standardised data; print a markdown table and write comparison.md / .csv / .json "
            "and PNG figures. A solver that fails gives a 'failed' row."
        ),
    )
    source = compare.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--dataset", type=lambda text: text.strip().lower().replace("_", "-"), choices=DATASETS,
        help="an embedded data set: " + ", ".join(DATASETS),
    )
    source.add_argument(
        "--data", metavar="PATH",
        help="a data file: CSV/TSV/text, .npy/.npz, svmlight, MNIST IDX",
    )
    compare.add_argument(
        "--target", help="target column of a CSV / .npy file: index or header name "
        "(default: the last column)",
    )
    compare.add_argument(
        "--solvers", default="auto",
        help="comma-separated convex back-ends or 'auto' (default: auto; see 'convexnn solvers')",
    )
    compare.add_argument(
        "--optimizers", default="sgd,adam,lbfgs",
        help="comma-separated backprop optimizers: sgd, momentum, nesterov, adagrad, rmsprop, "
        "adam, lbfgs (default: sgd,adam,lbfgs)",
    )
    compare.add_argument("--seeds", type=_seeds, default=3,
                         help="number of seeds, or a list such as 0,3,7 (default: 3)")
    compare.add_argument("--loss", default=None,
                         help="loss (default: squared); e.g. hinge, logistic, cross-entropy")
    compare.add_argument("--beta", type=float, default=0.1, help="l1 penalty (default: 0.1)")
    compare.add_argument(
        "--activation", type=_activation, default="relu-approx",
        help="relu-approx, quadratic or a,b,c for a t^2 + b t + c (default: relu-approx)",
    )
    compare.add_argument("--epochs", type=int, default=None,
                         help="backprop epochs (default: 1000, L-BFGS 200)")
    compare.add_argument("--width", type=int, default=None,
                         help="backprop width (default: 2 * outputs * (features + 1))")
    compare.add_argument("--objective", default="convex", choices=("convex", "weight-decay"),
                         help="what backprop minimises (default: convex)")
    compare.add_argument(
        "--max-samples", type=_max_samples, default="auto",
        help="cap on training samples: a number, 'auto' (default: caps only when a conic "
        "back-end runs on data too large for it; the report says why, see "
        "convexnn.comparison) or 'all'",
    )
    compare.add_argument("--test-size", type=_test_size, default=0.25,
                         help="test fraction, or number of test samples (default: 0.25)")
    compare.add_argument("--random-state", type=int, default=0,
                         help="seed of the split and the subsample (default: 0)")
    compare.add_argument("--task", default="auto", choices=("auto", "classification", "regression"),
                         help="for --data files (default: auto)")
    compare.add_argument(
        "--time-limit", type=float, default=None,
        help="seconds per convex solve (default: 60; 0 for none)",
    )
    compare.add_argument(
        "--tune-lr", action=argparse.BooleanOptionalAction, default=False,
        help="search each optimizer's learning rate on a log-spaced grid of short runs first "
        "(default: off)",
    )
    compare.add_argument(
        "--budget", type=_budget, default=None, metavar="SECONDS|match",
        help="run every optimizer for this many training seconds instead of --epochs; 'match': "
        "the convex solve's wall time",
    )
    compare.add_argument(
        "--filter-size", type=_filter_size, default=None,
        help="train the convolutional network with average pooling, with filters of this size "
        "(e.g. 3, or 1,5 for 1-D signals; images: the data set's shape, e.g. digits 8x8, or "
        "--image-shape)",
    )
    compare.add_argument(
        "--image-shape", type=_image_shape, default=None,
        help="the shape of each sample's image for --filter-size, e.g. 28,28 or 1,40 "
        "(default: the data set's; needed for --data files of flattened images)",
    )
    compare.add_argument("--pool-size", type=_pool_size, default="global",
                         help="average-pooling window of the convolutional network, or 'global' "
                         "(default: global)")
    compare.add_argument("--stride", type=int, default=1,
                         help="stride of the convolutional network's filters (default: 1)")
    compare.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=True,
                         help="standardise the features on the training part (default: yes; "
                         "--no-standardize: raw features, as in the paper's planted runs)")
    compare.add_argument("--out", default=None,
                         help="output folder (default: compare-results/<data set>)")
    compare.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                         help="progress bar (default: when stderr is a terminal)")
    compare.set_defaults(handler=_compare_command)
    add_model_commands(commands, common, _activation)
    return parser


#: The library's advice in Python's words, as the command line says it.
_CLI_WORDS = (
    ("max_iter / time_limit", "--max-iter / --time-limit"),
    ("a larger tol", "a larger --tol"),
    ("e.g. make_pipeline(StandardScaler(), estimator)",
     "e.g. standardise the file's columns (path, cv and compare do it by default)"),
    ("e.g. with sklearn.preprocessing.StandardScaler", "e.g. standardise the file's columns"),
    ("certify with tighten=True (or, with convexnn.certify, a solve's dual point in "
     "dual_points)", "--tighten"),
    ("pass header=True to load_csv, or rename", "rename"),
    ("Choose them with x_key= and y_key=",
     "The command line reads the arrays X and y: re-save it with np.savez(file, X=..., y=...)"),
    ("for .npz use x_key and y_key", "an .npz file's targets are its array y"),
    ("or pass labels_path= (or read the images alone with load_idx / read_idx)",
     "named as MNIST's are (train-images-idx3-ubyte -> train-labels-idx1-ubyte)"),
    ("pass conv={'image_shape': (channels, height, width), ...} for data without one",
     "pass --image-shape (e.g. 28,28 or 1,28,28) for data without one"),
    ("'auto' or None (all samples)", "auto or all"),
)


def _cli_text(message: object) -> str:
    """``message`` on one line, its advice in command-line words."""
    text = " ".join(str(message).split())
    for python, command_line in _CLI_WORDS:
        text = text.replace(python, command_line)
    return text


def _one_line(error: BaseException) -> str:
    """``Type: message`` on one line (messages of back-ends can span several)."""
    message = _cli_text(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _show_warning(message: Warning | str, category: type[Warning], *args: Any,
                  **kwargs: Any) -> None:
    """A warning as one line on stderr, like the errors (not Python's source-line form)."""
    print(f"convexnn: warning: {category.__name__}: {_cli_text(message)}", file=sys.stderr)


def _silence_stdout() -> None:
    """After a broken pipe: send what is left of stdout to /dev/null (no error at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``convexnn`` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _ArgumentError as error:
        print(f"convexnn: error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    np.set_printoptions(precision=4, suppress=True)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            if args.verbose:  # the solver's log shows its progress
                from convexnn.exceptions import LongSolveWarning

                warnings.simplefilter("ignore", LongSolveWarning)
            code = args.handler(args)
        sys.stdout.flush()  # a broken pipe shows here, inside the handler below
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except KeyboardInterrupt:
        print("convexnn: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one readable line unless --debug
        if args.debug:
            import traceback

            traceback.print_exc()
            return 2
        # Imported only here: convexnn.exceptions loads scikit-learn, which --help must not.
        from convexnn.exceptions import ConvexNNError

        hint = "" if isinstance(error, (ConvexNNError, OSError)) else (
            " (an unexpected error: run again with --debug for the traceback and report it)"
        )
        print(f"convexnn: error: {_one_line(error)}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
