"""Delimited text files (CSV, TSV, whitespace-separated), read with pandas."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import numbers
import re
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from convexnn._validation import user_stacklevel
from convexnn.datasets._paths import PathLike, existing_file
from convexnn.exceptions import ConvexNNWarning, DataFormatError, ValidationError


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def load_csv(
    path: PathLike,
    target: int | str | None = -1,
    *,
    delimiter: str | None = ",",
    header: Literal["infer"] | bool | None = "infer",
    allow_missing_target: bool = False,
    columns: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a delimited text file with one sample per row.

    Parameters
    ----------
    path : str or path-like
        Compressed files (``.gz``, ``.bz2``, ``.zip``, ``.xz``) are read too.
    target : int, str or None, default -1
        The target column, by position (negative counts from the end) or by
        header name. Every other column is a feature. ``None``: no target
        column (a file of new samples); every column is a feature and ``y``
        is ``None``.
    delimiter : str or None, default ","
        Field separator (a regular expression such as ``r"\\s+"`` works);
        ``None`` sniffs it.
    header : "infer", bool or None, default "infer"
        Whether the first row holds column names; ``"infer"`` says yes when
        none of its cells is a number. ``None`` means no header.
    allow_missing_target : bool, default False
        Read a target column with empty cells (a file to predict on, labelled
        in part or not at all): they come back as NaN (numeric targets) or
        ``""`` (labels) instead of raising.
    columns : sequence of str, optional
        Read only these feature columns, by header name, and the ``target``
        column (then given by name); the others (an id, a note) are not read.
        ``X`` keeps the file's order of the columns.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
        A feature column of ``True`` / ``False`` (as pandas writes booleans)
        reads as 1 / 0.
    y : ndarray of shape (n_samples,) or None
        Numbers if every target cell is one (integers stay integers),
        otherwise the labels as strings, as they also are where numbers
        would merge zero-padded codes (``"02134"`` and ``"2134"``: two
        classes); ``None`` with ``target=None``.

    Raises
    ------
    DataFormatError
        Rows of different lengths, a feature cell that is not a finite
        number, or a missing value; the message names the file, the column
        and the line.
    ValidationError
        ``target`` names no column.
    """
    file = existing_file(path)
    if delimiter is not None and not (isinstance(delimiter, str) and delimiter):
        raise ValidationError(f"delimiter must be a non-empty string or None, got {delimiter!r}")
    if delimiter is not None and len(delimiter) > 1 and _matches_empty_string(delimiter):
        raise ValidationError(
            f"delimiter {delimiter!r}: longer than one character it is a regular expression, "
            f"and this one matches the empty string; escape it ({re.escape(delimiter)!r})")
    try:
        table = _read_cells(file, delimiter)
    except re.error as error:  # pandas takes a delimiter longer than one character as one
        raise ValidationError(f"delimiter {delimiter!r}: longer than one character it is a "
                              f"regular expression, and not a valid one ({error})") from error
    except pd.errors.EmptyDataError as error:
        raise DataFormatError(f"{file} is empty; expected rows of delimited values") from error
    except _DECOMPRESSION_ERRORS as error:
        if getattr(error, "errno", None) is not None:  # a real I/O error, not the data's
            raise
        raise DataFormatError(f"{file} could not be read: {error}") from error
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{file} is not UTF-8 text ({error}); save it as UTF-8 (e.g. "
                              "'CSV UTF-8' in a spreadsheet)") from error
    except (pd.errors.ParserError, ValueError) as error:
        raise DataFormatError(f"{file} could not be parsed as delimited text: {error}") from error
    # Line numbers: row i of the raw table is line i + 1; blank lines are dropped now.
    table = table.dropna(how="all")
    if table.empty:
        raise DataFormatError(f"{file} has no data rows")
    if _is_svmlight(table.iloc[0], delimiter):
        raise DataFormatError(
            f"{file}: line {int(table.index[0]) + 1} holds index:value pairs, as svmlight / "
            "LIBSVM data does (label index:value ...); name the file .svm, .svmlight or "
            ".libsvm to read it as such")

    if header == "infer":
        has_header = _looks_like_header(table.iloc[0])
        if _numbers_the_columns(table.iloc[0]):
            warnings.warn(
                f"{file}: line 1 numbers the columns 0 to {table.shape[1] - 1}, read as the "
                "header pandas writes for a frame without column names (pass header=False "
                "if it is a sample)",
                ConvexNNWarning, stacklevel=user_stacklevel(),
            )
    elif header is None or isinstance(header, bool):
        has_header = bool(header)
    else:
        raise ValidationError(f"header must be 'infer', True, False or None, got {header!r}")
    # The first line, where no header was read: its non-numeric cells get the hint.
    first_line = None if has_header else int(table.index[0]) + 1
    if has_header:
        names = _names(table.iloc[0])
        table = table.iloc[1:]
    else:
        names = [f"column {i}" for i in range(table.shape[1])]
    if table.empty:
        raise DataFormatError(f"{file} has a header row but no data rows")
    if columns is not None:
        if not has_header or not (target is None or isinstance(target, str)):
            raise ValidationError(f"columns= selects columns by header name (and the target "
                                  f"by name); {file} has no header" if not has_header else
                                  f"with columns=, name the target; got target={target!r}")
        wanted = {*columns, *([] if target is None else [target])}
        unknown = sorted(wanted - set(names))
        if unknown:
            raise ValidationError(f"{file} has no column(s) {unknown}; its columns: {names}")
        keep = [index for index, name in enumerate(names) if name in wanted]
        table, names = table.iloc[:, keep], [names[index] for index in keep]
    if target is None:
        columns = [_numeric_column(table.iloc[:, index], name, file, feature=True,
                                   first_line=first_line)
                   for index, name in enumerate(names)]
        if has_header:
            _warn_about_an_index_column(columns[0], names[0], file)
        return np.column_stack(columns).astype(np.float64), None
    if table.shape[1] < 2:
        raise DataFormatError(
            f"{file} has a single column; expected feature columns and a target column "
            f"(is the delimiter {delimiter!r} right?)"
        )

    target_index = _target_column(target, names, has_header, file,
                                  table.iloc[0] if header == "infer" else None)
    columns = [
        _numeric_column(table.iloc[:, index], name, file, feature=index != target_index,
                        first_line=first_line)
        if index != target_index or not allow_missing_target
        else _partial_target(table.iloc[:, index], name, file)
        for index, name in enumerate(names)
    ]
    y = columns.pop(target_index)
    if header == "infer" and not has_header:
        _refuse_a_header_read_as_a_sample(y, names[target_index], file, first_line)
    if has_header and target_index != 0:
        _warn_about_an_index_column(columns[0], names[0], file)
    return np.column_stack(columns).astype(np.float64), y


def _is_svmlight(row: pd.Series, delimiter: str | None) -> bool:
    """Whether a whitespace-delimited ``row`` is a label and ``index:value`` pairs (a
    LIBSVM file named ``.txt``; ``12:30`` in a CSV is a time, not a pair)."""
    cells = row.dropna().str.strip().tolist()
    pair = r"\d+:[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
    return (delimiter in (r"\s+", " ", "\t") and len(cells) >= 2
            and all(re.fullmatch(pair, cell) for cell in cells[1:]))


def _matches_empty_string(pattern: str) -> bool:
    """Whether the regular expression ``pattern`` matches the empty string (``"||"``)."""
    try:
        return re.fullmatch(pattern, "") is not None
    except re.error:
        return False  # (reported when pandas compiles it)


def _warn_about_an_index_column(column: np.ndarray, name: str, file: Path) -> None:
    """Warn when the first column has no name in the header and counts up in integers from
    0 or 1 (perhaps with gaps: a filtered frame): the row index ``DataFrame.to_csv`` writes
    by default, which is read as a feature."""
    if name != "column 0" or len(column) < 2:
        return
    if column[0] in (0, 1) and np.all(column == np.round(column)) and np.all(np.diff(column) > 0):
        warnings.warn(
            f"{file}: the first column has no name in the header and counts the rows "
            f"({column[0]:g}, {column[1]:g}, ...), like the index pandas writes with "
            "to_csv; it is read as a feature. Write the file with index=False, or drop "
            "that column.",
            ConvexNNWarning, stacklevel=user_stacklevel(),
        )


def _refuse_a_header_read_as_a_sample(y: np.ndarray, name: str, file: Path, line: int) -> None:
    """A first line (``line``) inferred to be data whose target alone is not a number, below
    it only numbers (``2019,2020,label``): a header, which would be a sample of its own
    class."""
    if y.dtype.kind != "U" or y[0] == "" or _is_number(y[0]):
        return
    below = [value for value in y[1:] if value != ""]
    if below and all(_is_number(value) for value in below):
        raise DataFormatError(
            f"{file}: {name} has the value {str(y[0])!r} at line {line} and numbers in every "
            f"other line{_header_hint(line)}"
        )


#: What a compressed file that is not what its name says raises (gzip and bz2: an OSError
#: without the errno that real I/O errors carry), and what zipfile raises for a member it
#: cannot open: RuntimeError for an encrypted one, NotImplementedError (a RuntimeError)
#: for a compression method it lacks.
_DECOMPRESSION_ERRORS = (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError, RuntimeError)


#: Why :func:`csv_width` and :func:`csv_header` give up (:func:`load_csv` says which).
_UNREADABLE = (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError,
               re.error, *_DECOMPRESSION_ERRORS)


def _read_cells(file: Path, delimiter: str | None, rows: int | None = None) -> pd.DataFrame:
    """The file's cells as strings, one table row per line (blank lines kept as NaN rows
    so that row ``i`` is line ``i + 1``)."""
    # pandas finds no columns in a file that starts with a blank line: skip those lines
    # (with the python engine where they end in a bare \r, of which the C engine skips one
    # too many; elsewhere the C engine, which alone reads quotes with the delimiter \s+).
    blank, bare_cr = _leading_blank_lines(file)
    python_engine = (delimiter is None or (len(delimiter) > 1 and delimiter != r"\s+")
                     or (blank > 0 and bare_cr))
    table = pd.read_csv(
        file, sep=delimiter, header=None, dtype=str, skip_blank_lines=False, nrows=rows,
        skipinitialspace=True, engine="python" if python_engine else "c", skiprows=blank,
        # Only empty cells are missing here: "None" or "NA" may be a label or a column
        # name; where they stand for a missing number, _missing_cells says so.
        keep_default_na=False, na_values=[""],
        encoding="utf-8-sig",  # (a sniffed delimiter keeps a byte-order mark otherwise)
    )
    table.index += blank
    return table


def _leading_blank_lines(file: Path) -> tuple[int, bool]:
    """Lines before the first that is not blank (0 for a file of blank lines only, which
    pandas reports as empty), and whether a line read ended in a bare carriage return."""
    suffix = file.suffix.lower()
    if suffix == ".zip":  # pandas reads the archive's one member
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
            if len(names) != 1:
                return 0, False  # pandas says what is wrong with it
            with archive.open(names[0]) as member:
                return _count_blank(io.TextIOWrapper(member, "utf-8-sig", errors="replace"))
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(suffix, open)
    with opener(file, "rt", encoding="utf-8-sig", errors="replace") as handle:
        return _count_blank(handle)


def _count_blank(handle: io.TextIOBase) -> tuple[int, bool]:
    count = next((index for index, line in enumerate(handle) if line.strip()), 0)
    return count, "\r" in (handle.newlines or ())


def _header_hint(line: int) -> str:
    """How to have ``line`` (the first that is not blank) read as a header."""
    return (f"; if line {line} is a header, pass header=True to load_csv, or rename its "
            "column names that read as numbers (e.g. 2020 -> y2020; also inf, nan)")


def _is_boolean(cell: str) -> bool:
    """``True`` or ``False`` as pandas writes booleans (any case): a feature value of 1 or 0."""
    return cell.strip().lower() in ("true", "false")


def _looks_like_header(row: pd.Series) -> bool:
    """The ``"infer"`` rule: a first row none of whose cells is a number is a header, and
    so is pandas' header of a frame without column names (:func:`_numbers_the_columns`).

    A row of one name among empty cells is a sample whose feature values are missing
    (``,,cat``), unless the empty cell is the first alone (pandas' unnamed index column)."""
    if _numbers_the_columns(row):
        return True
    cells = list(row)
    named = sum(isinstance(cell, str) for cell in cells)
    if named <= 1 and any(not isinstance(cell, str) for cell in cells[1:]):
        return False
    return not any(_is_number(cell) or _is_boolean(cell) for cell in row if isinstance(cell, str))


def _numbers_the_columns(row: pd.Series) -> bool:
    """Whether ``row`` is ``0,1,...,k-1`` with ``k >= 3`` (what pandas writes as the header
    of a frame without column names; read as data it is a sample with target ``k-1``).
    Two columns are left alone: ``0,1`` is too common a first sample."""
    cells = [cell.strip() if isinstance(cell, str) else cell for cell in row]
    return len(cells) >= 3 and cells == [str(i) for i in range(len(cells))]


def _names(row: pd.Series) -> list[str]:
    return [str(cell).strip() if isinstance(cell, str) else f"column {i}"
            for i, cell in enumerate(row)]


def csv_width(path: PathLike, delimiter: str | None = ",") -> int | None:
    """The number of columns of a delimited text file (its first lines), ``None`` if it
    cannot be read (:func:`load_csv` says why)."""
    try:
        table = _read_cells(existing_file(path), delimiter, rows=50).dropna(how="all")
    except _UNREADABLE:
        return None
    return table.shape[1]


def csv_header(path: PathLike, delimiter: str | None = ",") -> list[str] | None:
    """The column names of a delimited text file whose first row :func:`load_csv` takes
    for a header (``header="infer"``), else ``None``."""
    file = existing_file(path)
    try:
        table = _read_cells(file, delimiter, rows=50).dropna(how="all")
    except _UNREADABLE:
        return None  # load_csv says what is wrong with the file
    if table.empty or not _looks_like_header(table.iloc[0]):
        return None
    return _names(table.iloc[0])


def _target_column(target: Any, names: list[str], has_header: bool, file: Path,
                   first_row: pd.Series | None) -> int:
    """The target's column index; ``first_row``: the first line where the header was
    inferred not to be one (``None`` where the caller said)."""
    if isinstance(target, str):
        if not has_header:
            cells = [] if first_row is None else [
                cell.strip() for cell in first_row if isinstance(cell, str)]
            numeric = [cell for cell in cells if _is_number(cell) or _is_boolean(cell)]
            if target in cells and numeric:  # a header with a number ("a,b,2020,label")
                raise ValidationError(
                    f"target {target!r} is in line {int(first_row.name) + 1} of {file}, "
                    f"which was not taken for a header because it has the number(s) "
                    f"{numeric[:3]}{_header_hint(int(first_row.name) + 1)}"
                )
            raise ValidationError(
                f"target {target!r} is a column name but {file} has no header row; give "
                f"the target column's index (0 to {len(names) - 1}) instead"
            )
        if target not in names:
            raise ValidationError(f"target {target!r} is not a column of {file}; columns: {names}")
        if names.count(target) > 1:
            raise ValidationError(
                f"target {target!r} names {names.count(target)} columns of {file}; rename "
                "them or give the target column's index"
            )
        return names.index(target)
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        if not -len(names) <= target < len(names):
            raise ValidationError(
                f"target column {target} is out of range; {file} has {len(names)} columns"
            )
        return int(target) % len(names)
    raise ValidationError(f"target must be a column index or name, got {target!r}")


#: The words pandas reads as missing values by default.
_MISSING_WORDS = frozenset({
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})


def _missing_cells(cells: pd.Series, *, feature: bool) -> pd.Series:
    """Which cells are missing: empty ones, and the words of :data:`_MISSING_WORDS` in a
    feature column or in a target column of numbers; in a column of labels such a word
    is a label (a severity ``"None"``)."""
    missing = cells.isna()
    words = cells.isin(_MISSING_WORDS)  # (read with skipinitialspace: no leading blanks)
    if not words.any():
        return missing
    if not feature:
        others = cells[~(missing | words)].str.strip()
        if not pd.to_numeric(others, errors="coerce").notna().all():
            return missing
    return missing | words


def _partial_target(cells: pd.Series, name: str, file: Path) -> np.ndarray:
    """A target column whose empty cells are NaN (numbers) or ``""`` (labels)."""
    missing = _missing_cells(cells, feature=False).to_numpy()
    present = _numeric_column(cells[~missing], name, file, feature=False)
    if not missing.any():
        return present  # integers stay integers
    numeric = present.dtype.kind in "biuf"
    column = np.full(len(cells), np.nan if numeric else "",
                     dtype=np.float64 if numeric else present.dtype)
    column[~missing] = present
    return column


#: A zero-padded integer ("007", "-02"); see :func:`_numeric_column`.
_ZERO_PADDED = r"[+-]?0\d+$"


def _numeric_column(cells: pd.Series, name: str, file: Path, *, feature: bool,
                    first_line: int | None = None) -> np.ndarray:
    """A column as numbers; features must be finite, targets may be labels. A feature
    that is not a number at ``first_line`` (a first line read as data) gets the hint of
    :func:`_header_hint`."""
    what = f"column {name!r}" if not name.startswith("column ") else name
    missing = _missing_cells(cells, feature=feature)
    if missing.any():
        line = int(missing.idxmax()) + 1
        raise DataFormatError(
            f"{file}: missing value in {what} at line {line}; expected a "
            f"{'number' if feature else 'target'} in every row (drop or impute missing values)"
        )
    stripped = cells.str.strip()
    if feature and stripped.map(_is_boolean).all():
        # A boolean column as pandas writes it: 1 and 0, as a bool array X would give.
        return (stripped.str.lower() == "true").to_numpy(dtype=np.float64)
    values = pd.to_numeric(stripped, errors="coerce")
    numeric = values.notna()
    if (not feature and numeric.all() and values.nunique() < stripped.nunique()
            and stripped.str.match(_ZERO_PADDED).any()):
        # Codes that numbers would merge ("02134" and "2134"): two classes, as written.
        # Consistent padding ("007", "120") stays numbers.
        return stripped.to_numpy(dtype=str)
    infinite = numeric & ~np.isfinite(values.astype(np.float64))
    if numeric.all() and not infinite.any():
        return values.to_numpy()
    if numeric.all():  # numbers, some infinite or beyond float64 ("inf", "1e400")
        line = int(infinite.idxmax()) + 1
        raise DataFormatError(
            f"{file}: {what} has the value {stripped[infinite.idxmax()]!r} at line {line}, "
            "which is not a finite float64; expected finite numbers (drop that row or rescale)"
        )
    if not feature:
        return stripped.to_numpy(dtype=str)
    bad = ~numeric
    line = int(bad.idxmax()) + 1
    value = stripped[bad.idxmax()]
    raise DataFormatError(
        f"{file}: non-numeric feature {what}: value {value!r} at line {line}; "
        f"expected a finite number (encode categorical columns first, or choose this column "
        f"as the target{_header_hint(line) if line == first_line else ''})"
    )
