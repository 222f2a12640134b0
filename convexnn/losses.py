"""Convex losses in the predictions, each a sum over samples (and outputs).

A loss is a small class with its value, gradient (a subgradient for the
non-smooth ones), Gauss-Newton curvature, convex conjugate (which gives the
dual bound) and cvxpy expression, all in one place. Tensors have shape
``(n, C)``; the squared loss is ``1/2 sum (yhat - y)^2``, as in the
reference implementation.

Back-ends take a loss by what it offers, not by its name (see
:mod:`convexnn.solvers.base`): the native solver needs ``smooth`` and
``hessian_vector``, the conic back-ends its cvxpy expression in cones they
support (CVXOPT has no exponential cone). A subclass of :class:`Loss` works
with every back-end whose needs it meets.

==================  ========  ============================  ========  =============
name                smooth    targets                       outputs   cones
==================  ========  ============================  ========  =============
squared             yes       real                          any       soc
huber               yes       real                          any       nonneg, soc
l1                  no        real                          any       nonneg
logistic            yes       -1 / +1                       any       exp, nonneg
hinge               no        -1 / +1                       any       nonneg
cross-entropy       yes       one-hot rows                  C >= 2    exp, nonneg
multiclass-hinge    no        one-hot rows                  C >= 2    nonneg
==================  ========  ============================  ========  =============
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from convexnn._validation import writable
from convexnn.exceptions import ValidationError
from convexnn.solvers._checks import is_real

if TYPE_CHECKING:  # pragma: no cover
    import cvxpy as cp

_INF = float("inf")


class Loss(ABC):
    """A convex loss ``l(yhat, y)`` summed over all entries (or rows).

    Subclasses set ``name`` and ``smooth``, implement the torch methods and
    the cvxpy expression, and declare the ``cones`` that expression uses
    besides equalities (``"nonneg"``, ``"soc"``, ``"exp"``, ``"pow"``,
    ``"psd"``; a conic back-end takes the loss when it supports them all).
    ``targets`` says what ``y`` must hold (``"real"``, ``"sign"`` for -1/+1,
    ``"onehot"``).
    """

    name: ClassVar[str]
    smooth: ClassVar[bool]
    cones: ClassVar[frozenset[str]]
    targets: ClassVar[str] = "real"
    #: Needs at least two outputs (a row-wise loss such as cross-entropy).
    row_wise: ClassVar[bool] = False
    #: ``True`` only for ``1/2 sum (yhat - y)^2`` itself, which the native
    #: interior-point engine is built for; a subclass that changes the loss's
    #: values must set it back to ``False``.
    squared_error: ClassVar[bool] = False

    @abstractmethod
    def value(self, yhat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The summed loss."""

    @abstractmethod
    def gradient(self, yhat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The gradient, or a subgradient where the loss is not differentiable."""

    def hessian_vector(
        self, yhat: torch.Tensor, y: torch.Tensor, w: torch.Tensor
    ) -> torch.Tensor:
        """The loss Hessian (block diagonal over samples) applied to ``w``."""
        raise NotImplementedError(f"the {self.name} loss is not twice differentiable")

    @abstractmethod
    def conjugate(self, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``sup_yhat <v, yhat> - l(yhat, y)``; ``+inf`` outside its domain."""

    @abstractmethod
    def cvxpy(self, yhat: cp.Expression, y: np.ndarray) -> cp.Expression:
        """The loss as a cvxpy expression in the ``(n, C)`` predictions."""

    def project_dual(self, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Nearest point of the conjugate's domain (a solver's dual is only approximate)."""
        return v

    def __call__(self, yhat: np.ndarray, y: np.ndarray) -> float:
        """The summed loss of numpy arrays (shapes broadcast as ``(n, C)``)."""
        yhat_t, y_t = _as_2d_tensor(yhat), _as_2d_tensor(y)
        return float(self.value(yhat_t, y_t))

    def check_targets(self, y: np.ndarray) -> None:
        """Raise :class:`ValidationError` if ``y`` (shape ``(n, C)``) does not suit."""
        if self.targets == "sign" and not np.all(np.isin(y, (-1.0, 1.0))):
            raise ValidationError(
                f"the {self.name} loss needs targets in {{-1, +1}}; got values "
                f"{np.unique(y)[:5]}. Use a classifier, which encodes labels itself."
            )
        if self.targets == "onehot":
            if y.shape[1] < 2:
                raise ValidationError(
                    f"the {self.name} loss needs one-hot targets of at least 2 columns, got "
                    f"{y.shape[1]} column; use a classifier, which encodes labels itself"
                )
            if not (np.all(np.isin(y, (0.0, 1.0))) and np.all(y.sum(axis=1) == 1)):
                raise ValidationError(
                    f"the {self.name} loss needs one-hot target rows; use a "
                    "classifier, which encodes labels itself"
                )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))


class SquaredLoss(Loss):
    """``1/2 sum (yhat - y)^2``."""

    name = "squared"
    smooth = True
    cones = frozenset({"soc"})
    squared_error = True

    def value(self, yhat, y):
        return 0.5 * torch.sum((yhat - y) ** 2)

    def gradient(self, yhat, y):
        return yhat - y

    def hessian_vector(self, yhat, y, w):
        return w

    def conjugate(self, v, y):
        return torch.sum(0.5 * v * v + v * y)

    def cvxpy(self, yhat, y):
        import cvxpy as cp  # only the conic back-ends need it

        return 0.5 * cp.sum_squares(yhat - y)


class HuberLoss(Loss):
    """``sum h(yhat - y)``, ``h(r) = r^2/2`` if ``|r| <= delta``, else ``delta (|r| - delta/2)``."""

    name = "huber"
    smooth = True
    cones = frozenset({"nonneg", "soc"})

    def __init__(self, delta: float = 1.0) -> None:
        if not (is_real(delta) and delta > 0):
            raise ValidationError(f"huber delta must be a positive finite number, got {delta!r}")
        self.delta = float(delta)

    def value(self, yhat, y):
        r = torch.abs(yhat - y)
        quadratic = torch.clamp(r, max=self.delta)
        return torch.sum(0.5 * quadratic**2 + self.delta * (r - quadratic))

    def gradient(self, yhat, y):
        return torch.clamp(yhat - y, -self.delta, self.delta)

    def hessian_vector(self, yhat, y, w):
        return w * (torch.abs(yhat - y) <= self.delta)

    def conjugate(self, v, y):
        if torch.any(torch.abs(v) > self.delta * (1 + 1e-12)):
            return torch.tensor(_INF, dtype=v.dtype, device=v.device)
        v = self.project_dual(v, y)  # rounding's overshoot counted at the domain's edge
        return torch.sum(0.5 * v * v + v * y)

    def cvxpy(self, yhat, y):
        import cvxpy as cp  # only the conic back-ends need it

        return 0.5 * cp.sum(cp.huber(yhat - y, self.delta))

    def project_dual(self, v, y):
        return torch.clamp(v, -self.delta, self.delta)

    def __repr__(self) -> str:
        return f"HuberLoss(delta={self.delta:g})"


class L1Loss(Loss):
    """``sum |yhat - y|``."""

    name = "l1"
    smooth = False
    cones = frozenset({"nonneg"})

    def value(self, yhat, y):
        return torch.sum(torch.abs(yhat - y))

    def gradient(self, yhat, y):
        return torch.sign(yhat - y)

    def conjugate(self, v, y):
        if torch.any(torch.abs(v) > 1 + 1e-12):
            return torch.tensor(_INF, dtype=v.dtype, device=v.device)
        return torch.sum(self.project_dual(v, y) * y)

    def cvxpy(self, yhat, y):
        import cvxpy as cp  # only the conic back-ends need it

        return cp.sum(cp.abs(yhat - y))

    def project_dual(self, v, y):
        return torch.clamp(v, -1.0, 1.0)


class LogisticLoss(Loss):
    """``sum log(1 + exp(-y yhat))`` with ``y`` in {-1, +1}."""

    name = "logistic"
    smooth = True
    cones = frozenset({"exp", "nonneg"})
    targets = "sign"

    def value(self, yhat, y):
        return torch.sum(torch.nn.functional.softplus(-y * yhat))

    def gradient(self, yhat, y):
        return -y * torch.sigmoid(-y * yhat)

    def hessian_vector(self, yhat, y, w):
        s = torch.sigmoid(y * yhat)
        return s * (1 - s) * w

    def conjugate(self, v, y):
        q = -v * y
        if torch.any(q < -1e-12) or torch.any(q > 1 + 1e-12):
            return torch.tensor(_INF, dtype=v.dtype, device=v.device)
        q = torch.clamp(q, 0.0, 1.0)
        return torch.sum(torch.special.xlogy(q, q) + torch.special.xlogy(1 - q, 1 - q))

    def cvxpy(self, yhat, y):
        import cvxpy as cp  # only the conic back-ends need it

        return cp.sum(cp.logistic(-cp.multiply(y, yhat)))

    def project_dual(self, v, y):
        return -y * torch.clamp(-v * y, 0.0, 1.0)


class HingeLoss(Loss):
    """``sum max(0, 1 - y yhat)`` with ``y`` in {-1, +1}."""

    name = "hinge"
    smooth = False
    cones = frozenset({"nonneg"})
    targets = "sign"

    def value(self, yhat, y):
        return torch.sum(torch.clamp(1 - y * yhat, min=0))

    def gradient(self, yhat, y):
        return -y * (y * yhat < 1)

    def conjugate(self, v, y):
        q = -v * y
        if torch.any(q < -1e-12) or torch.any(q > 1 + 1e-12):
            return torch.tensor(_INF, dtype=v.dtype, device=v.device)
        return torch.sum(self.project_dual(v, y) * y)

    def cvxpy(self, yhat, y):
        import cvxpy as cp  # only the conic back-ends need it

        return cp.sum(cp.pos(1 - cp.multiply(y, yhat)))

    def project_dual(self, v, y):
        return -y * torch.clamp(-v * y, 0.0, 1.0)


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy ``sum_i logsumexp(yhat_i) - <y_i, yhat_i>``, one-hot ``y``."""

    name = "cross-entropy"
    smooth = True
    cones = frozenset({"exp", "nonneg"})
    targets = "onehot"
    row_wise = True

    def value(self, yhat, y):
        return torch.sum(torch.logsumexp(yhat, dim=1) - torch.sum(y * yhat, dim=1))

    def gradient(self, yhat, y):
        return torch.softmax(yhat, dim=1) - y

    def hessian_vector(self, yhat, y, w):
        p = torch.softmax(yhat, dim=1)
        return p * w - p * torch.sum(p * w, dim=1, keepdim=True)

    def conjugate(self, v, y):
        p = v + y
        if torch.any(p < -1e-12) or torch.any(torch.abs(p.sum(dim=1) - 1) > 1e-9):
            return torch.tensor(_INF, dtype=v.dtype, device=v.device)
        p = _onto_simplex(p)
        return torch.sum(torch.special.xlogy(p, p))

    def cvxpy(self, yhat, y):
        import cvxpy as cp  # only the conic back-ends need it

        return cp.sum(cp.log_sum_exp(yhat, axis=1)) - cp.sum(cp.multiply(y, yhat))

    def project_dual(self, v, y):
        return project_rows_to_simplex(v + y) - y


def _onto_simplex(p: torch.Tensor) -> torch.Tensor:
    """Rows within rounding of the simplex put on it (clipped and normalised; cheaper than
    :func:`project_rows_to_simplex`), so that a conjugate counts rounding's overshoot at a
    point of its domain."""
    p = torch.clamp(p, min=0.0)
    return p / p.sum(dim=1, keepdim=True)


class MulticlassHingeLoss(Loss):
    """Crammer-Singer ``sum_i max_k (yhat_ik + 1 - y_ik) - <y_i, yhat_i>``, one-hot ``y``."""

    name = "multiclass-hinge"
    smooth = False
    cones = frozenset({"nonneg"})
    targets = "onehot"
    row_wise = True

    def value(self, yhat, y):
        margins = yhat + 1 - y
        return torch.sum(margins.max(dim=1).values - torch.sum(y * yhat, dim=1))

    def gradient(self, yhat, y):
        worst = torch.argmax(yhat + 1 - y, dim=1)
        return torch.nn.functional.one_hot(worst, yhat.shape[1]).to(yhat.dtype) - y

    def conjugate(self, v, y):
        p = v + y
        if torch.any(p < -1e-12) or torch.any(torch.abs(p.sum(dim=1) - 1) > 1e-9):
            return torch.tensor(_INF, dtype=v.dtype, device=v.device)
        return torch.sum((_onto_simplex(p) - y) * y)

    def cvxpy(self, yhat, y):
        import cvxpy as cp  # only the conic back-ends need it

        return cp.sum(cp.max(yhat + 1 - y, axis=1)) - cp.sum(cp.multiply(y, yhat))

    def project_dual(self, v, y):
        return project_rows_to_simplex(v + y) - y


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (
        SquaredLoss,
        HuberLoss,
        L1Loss,
        LogisticLoss,
        HingeLoss,
        CrossEntropyLoss,
        MulticlassHingeLoss,
    )
}
_ALIASES = {"cross_entropy": "cross-entropy", "softmax": "cross-entropy",
            "multiclass_hinge": "multiclass-hinge", "absolute": "l1"}

LossLike = str | Loss


def get_loss(spec: LossLike) -> Loss:
    """Resolve a loss name (see the module table) or pass a :class:`Loss` through."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str):
        key = spec.lower()
        key = _ALIASES.get(key, key)
        if key in LOSSES:
            return LOSSES[key]()
    raise ValidationError(
        f"unknown loss {spec!r}; use one of {', '.join(LOSSES)} or a convexnn.losses.Loss"
    )


def project_rows_to_simplex(points: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of every row onto the probability simplex."""
    ordered, _ = torch.sort(points, dim=1, descending=True)
    cumulative = torch.cumsum(ordered, dim=1) - 1
    steps = torch.arange(1, points.shape[1] + 1, dtype=points.dtype, device=points.device)
    support = (ordered - cumulative / steps) > 0
    count = support.sum(dim=1, keepdim=True).clamp(min=1)
    threshold = torch.gather(cumulative, 1, count - 1) / count.to(points.dtype)
    return torch.clamp(points - threshold, min=0.0)


def _as_2d_tensor(array: np.ndarray) -> torch.Tensor:
    tensor = torch.as_tensor(writable(np.asarray(array, dtype=np.float64)))
    return tensor.reshape(-1, 1) if tensor.ndim == 1 else tensor
