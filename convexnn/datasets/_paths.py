"""What every file loader does first: check that the path names an existing file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from convexnn._validation import check_path
from convexnn.exceptions import DataFormatError, MissingFileError

PathLike = Union[str, "os.PathLike[str]"]


def existing_file(path: PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path` to a regular file that exists.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    Path

    Raises
    ------
    MissingFileError
        Nothing exists at ``path``.
    DataFormatError
        ``path`` is a folder or another non-file.
    """
    file = check_path(path)
    if not file.exists():
        raise MissingFileError(f"data file not found: {file}")
    if not file.is_file():
        raise DataFormatError(f"{file} is not a file")
    return file
