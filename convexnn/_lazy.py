"""Public names imported on first use (PEP 562), shared by the lazy namespaces.

``import convexnn`` and ``convexnn --help`` must stay fast, so packages
re-export their public names through a module ``__getattr__`` that imports
the defining module only when a name is first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def attach(
    package: str, namespace: dict[str, Any], names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` exposing ``names``.

    Parameters
    ----------
    package : str
        The package's dotted name (for error messages and submodules).
    namespace : dict
        The package's ``globals()``; a resolved name is cached there.
    names : mapping of str to str
        Public name -> the module that defines it. A name mapped to
        ``f"{package}.{name}"`` is that submodule itself.

    Returns
    -------
    (__getattr__, __dir__)
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(names[name])
        value = module if names[name] == f"{package}.{name}" else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
