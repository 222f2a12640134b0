"""Degree-two polynomial activations ``sigma(t) = a t^2 + b t + c``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from convexnn.exceptions import ValidationError
from convexnn.solvers._checks import is_real

ArrayT = TypeVar("ArrayT")

#: Named activations. ``relu-approx`` is the least-squares fit of ReLU on [-5, 5].
PRESETS: dict[str, tuple[float, float, float]] = {
    "quadratic": (1.0, 0.0, 0.0),
    "relu-approx": (0.09375, 0.5, 0.46875),
}


#: The largest coefficient's magnitude of an activation a solve takes (at 1e300 every
#: solver failed deep inside: singular Newton systems, SCS's KKT factorisation).
SCALE_RANGE = (1e-6, 1e6)


@dataclass(frozen=True)
class Activation:
    """The polynomial ``sigma(t) = a t^2 + b t + c``.

    Parameters
    ----------
    a, b, c : float
        Coefficients; finite, not all zero.
    name : str, optional
        The preset this activation came from, if any.
    """

    a: float
    b: float
    c: float
    name: str | None = None

    def __post_init__(self) -> None:
        coefficients = (self.a, self.b, self.c)
        if not all(is_real(value) for value in coefficients):
            raise ValidationError(
                f"activation coefficients (a, b, c) must be finite real numbers, "
                f"got {coefficients!r}"
            )
        if not any(coefficients):
            raise ValidationError("activation coefficients (a, b, c) must not all be zero")
        for field_name, value in zip("abc", coefficients):
            object.__setattr__(self, field_name, float(value))

    @property
    def coefficients(self) -> tuple[float, float, float]:
        return (self.a, self.b, self.c)

    def __call__(self, t: ArrayT) -> ArrayT:
        return self.a * t * t + self.b * t + self.c  # type: ignore[operator]

    def derivative(self, t: ArrayT) -> ArrayT:
        return 2 * self.a * t + self.b  # type: ignore[operator]

    def check_solvable(self) -> None:
        """Raise :class:`ValidationError` if the largest coefficient's magnitude is outside
        :data:`SCALE_RANGE`, where the solvers fail for rounding (networks with such an
        activation can still be evaluated and certified)."""
        scale = max(abs(value) for value in self.coefficients)
        if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
            a, b, c = (value / scale for value in self.coefficients)
            raise ValidationError(
                f"activation coefficients {self.coefficients!r} have scale {scale:.3g}, "
                f"outside [{SCALE_RANGE[0]:g}, {SCALE_RANGE[1]:g}], where the solvers fail "
                "for rounding; scaling sigma by s is the same problem as dividing beta by s "
                f"(the output weights take s up), so pass ({a:.6g}, {b:.6g}, {c:.6g}) with "
                f"beta / {scale:.3g}"
            )

    def __str__(self) -> str:
        body = f"{self.a:g} t^2 + {self.b:g} t + {self.c:g}"
        return f"{self.name} ({body})" if self.name else body


ActivationLike = str | Sequence[float] | Activation


def get_activation(spec: ActivationLike) -> Activation:
    """Resolve a preset name, an ``(a, b, c)`` triple or an :class:`Activation`."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        key = spec.lower().replace("_", "-")
        if key not in PRESETS:
            raise ValidationError(
                f"unknown activation {spec!r}; use one of {', '.join(sorted(PRESETS))} "
                "or a tuple (a, b, c)"
            )
        return Activation(*PRESETS[key], name=key)
    if isinstance(spec, (Sequence, np.ndarray)) and len(spec) == 3:
        return Activation(*spec)
    raise ValidationError(
        f"activation must be one of {', '.join(sorted(PRESETS))} or a tuple (a, b, c) "
        f"of three numbers, got {spec!r}"
    )
