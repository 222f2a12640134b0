"""The exact convex programs (design notes, sections 2 and 4) as data.

:class:`PolySDP` describes one problem by its patches, targets, activation,
beta and loss, and satisfies :class:`convexnn.solvers.base.SDPProblem`: every
back-end builds its own model from these arrays (the conic ones a cvxpy
problem, :mod:`convexnn.solvers._conic_model`). Build one with
:func:`make_problem` (fully connected, scalar or vector output) or
:func:`make_conv_problem` (convolution with average pooling).

:func:`nuclear_norm_program` is the quadratic-activation special case
``min l(diag(X W X^T), y) + beta ||W||_*``, a modelling-level cross-check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from convexnn._validation import (
    FEATURE_LIMIT,
    as_float_array,
    check_beta,
    check_targets,
    writable,
)
from convexnn.activations import Activation, ActivationLike, get_activation
from convexnn.exceptions import ValidationError, translate_solver_error
from convexnn.losses import Loss, LossLike, get_loss
from convexnn.patches import ConvGeometry
from convexnn.solvers._checks import is_real
from convexnn.solvers._memory import ensure_fits
from convexnn.solvers.base import ProblemShape, coefficient_matrix
from convexnn.solvers.errors import SolverError

if TYPE_CHECKING:  # pragma: no cover
    import cvxpy as cp

    from convexnn.network import TwoLayerPolyNet


@dataclass(eq=False)
class PolySDP:
    """The SDP of one training problem (see :mod:`convexnn.solvers.base` for the math).

    Attributes
    ----------
    patches : ndarray of shape (n, R, P, h)
        Samples (``R = P = 1``), or the training patches of a convolutional problem
        (:meth:`ConvGeometry.training_patches`: synthetic patches with the moments of
        the images' own, ``P = min(pool_area, h + 1)``).
    targets : ndarray of shape (n, C)
        Loss-encoded targets (e.g. -1/+1 or one-hot for classification).
    activation : Activation
    beta : float
    loss : Loss
    geometry : ConvGeometry or None
        Set for the convolutional variant.
    communicator : Communicator or None
        Set in a data-parallel solve (:mod:`convexnn.distributed`): ``patches``
        and ``targets`` are this rank's rows, and :meth:`objective` and
        :meth:`reduce` complete sums over samples over every rank.
    """

    patches: np.ndarray = field(repr=False)  # arrays stay out of the repr; see `shape`
    targets: np.ndarray = field(repr=False)
    activation: Activation
    beta: float
    loss: Loss
    geometry: ConvGeometry | None = None
    communicator: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Built by hand (it is public), a string activation or 2-d samples would
        # otherwise fail deep inside a back-end with an AttributeError.
        advice = "build the problem with make_problem or make_conv_problem"
        for name, kind in (("activation", Activation), ("loss", Loss)):
            if not isinstance(getattr(self, name), kind):
                raise ValidationError(
                    f"PolySDP {name} must be a convexnn.{kind.__name__}, got "
                    f"{type(getattr(self, name)).__name__}; {advice}"
                )
        if not (
            isinstance(self.patches, np.ndarray)
            and isinstance(self.targets, np.ndarray)
            and self.patches.ndim == 4
            and self.targets.ndim == 2
            and len(self.patches) == len(self.targets)
        ):
            raise ValidationError(
                "PolySDP patches must be an array of shape (n, R, P, h) and targets one of "
                f"shape (n, C); got shapes {np.shape(self.patches)} and "
                f"{np.shape(self.targets)}; {advice}"
            )
        for name in ("patches", "targets"):
            values = getattr(self, name)
            if values.dtype.kind in "biu":  # (+-1 labels as ints: solved before this check)
                values = values.astype(np.float64)
                setattr(self, name, values)
            if values.dtype.kind != "f" or values.size == 0 or not np.isfinite(values).all():
                raise ValidationError(
                    f"PolySDP {name} must be a non-empty array of finite real numbers, got "
                    f"dtype {values.dtype}, shape {values.shape}"
                    + ("" if values.dtype.kind != "f" or values.size == 0 else
                       f", {int(values.size - np.isfinite(values).sum())} NaN or infinite")
                    + f"; {advice}"
                )
        if not is_real(self.beta) or self.beta < 0:
            raise ValidationError(f"PolySDP beta must be a finite non-negative number, got "
                                  f"{self.beta!r}; {advice}")
        if self.geometry is None:
            if self.patches.shape[1:3] != (1, 1):
                raise ValidationError(
                    f"PolySDP patches of shape {self.patches.shape} have several regions or "
                    f"patches per sample but no geometry; {advice}"
                )
        elif not isinstance(self.geometry, ConvGeometry):
            raise ValidationError(f"PolySDP geometry must be a ConvGeometry or None; {advice}")
        elif (self.patches.shape[1] != self.geometry.n_regions
              or self.patches.shape[3] != self.geometry.patch_size):
            raise ValidationError(
                f"PolySDP patches of shape {self.patches.shape} do not match its geometry "
                f"({self.geometry.n_regions} regions of patches of {self.geometry.patch_size} "
                f"values); {advice}"
            )

    def reduce(self, value: Any) -> Any:
        """A sum over this problem's samples (a float, array or tensor), completed over
        the ranks of a data-parallel solve (the identity otherwise)."""
        if self.communicator is None:
            return value
        if isinstance(value, float | int):
            return self.communicator.sum(value)
        import torch

        if isinstance(value, torch.Tensor):
            return self.communicator.all_reduce(value)
        return self.communicator.all_reduce(torch.as_tensor(np.asarray(value))).numpy()

    @property
    def coefficients(self) -> tuple[float, float, float]:
        return self.activation.coefficients

    @property
    def shape(self) -> ProblemShape:
        return ProblemShape.of(self)

    def block_index(self, region: int, output: int) -> int:
        return region * self.shape.n_outputs + output

    def predict_blocks(self, blocks: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Predictions ``(n, C)`` of given ``(Z, Z')`` pairs, without cvxpy."""
        shape = self.shape
        if len(blocks) != shape.n_blocks:
            raise ValidationError(f"expected {shape.n_blocks} block pairs, got {len(blocks)}")
        scale = coefficient_matrix(self.coefficients, shape.patch_size)
        ones = np.ones(self.patches.shape[:3] + (1,))
        augmented = np.concatenate([self.patches, ones], axis=3)  # (n, R, P, h+1)
        yhat = np.zeros((shape.n_samples, shape.n_outputs))
        for r in range(shape.n_regions):
            for k in range(shape.n_outputs):
                z_pos, z_neg = blocks[self.block_index(r, k)]
                m = scale * (z_pos - z_neg)
                f = augmented[:, r]
                yhat[:, k] += np.einsum("npi,ij,npj->n", f, m, f) / f.shape[1]
        return yhat

    def block_penalty(self, blocks: list[tuple[np.ndarray, np.ndarray]]) -> float:
        """``sum_rk Z_rk[h, h] + Z'_rk[h, h]``."""
        return float(sum(z[-1, -1] + z_neg[-1, -1] for z, z_neg in blocks))

    def objective(self, yhat: np.ndarray, penalty: float) -> float:
        """``loss(yhat, targets) + beta * penalty`` (over every rank's samples)."""
        return self.reduce(self.loss(yhat, self.targets)) + self.beta * penalty

    def network_objective(self, network: TwoLayerPolyNet) -> float:
        """:meth:`objective` of a :class:`~convexnn.network.TwoLayerPolyNet` on these patches."""
        return self.objective(network.outputs(self.patches), network.penalty())


def make_problem(
    X: np.ndarray,
    y: np.ndarray,
    *,
    activation: ActivationLike = "relu-approx",
    beta: float = 0.1,
    loss: LossLike = "squared",
) -> PolySDP:
    """The SDP of a fully connected network: scalar output for 1-D ``y``, vector for 2-D.

    Parameters
    ----------
    X : array-like of shape (n, d)
    y : array-like of shape (n,) or (n, C)
        Targets as the loss expects them (-1/+1 or one-hot for classification).
    activation : str or (a, b, c) or Activation
    beta : float
    loss : str or Loss
    """
    features = as_float_array(X, "X", limit=FEATURE_LIMIT)
    return _assemble(features[:, None, None, :], y, activation, beta, loss, None)


def make_conv_problem(
    X: np.ndarray,
    y: np.ndarray,
    geometry: ConvGeometry,
    *,
    activation: ActivationLike = "relu-approx",
    beta: float = 0.1,
    loss: LossLike = "squared",
) -> PolySDP:
    """The SDP of a convolutional network with average pooling.

    ``X`` holds images as ``(n, C, H, W)``, ``(n, H, W)`` or flat rows
    matching ``geometry.image_shape``. The problem's ``patches`` are
    :meth:`ConvGeometry.training_patches` (the same problem, exactly, in at
    most ``patch_size + 1`` patches per pooling region).
    """
    if not isinstance(geometry, ConvGeometry):
        raise ValidationError(
            "geometry must be a convexnn.ConvGeometry(image_shape, filter_size, stride, "
            f"pool_size), got {type(geometry).__name__}"
        )
    images = as_float_array(X, "X", ndims=(2, 3, 4), limit=FEATURE_LIMIT)
    regions, per_region, h = (geometry.n_regions, min(geometry.pool_area,
                              geometry.patch_size + 1), geometry.patch_size)
    try:
        # Two copies at the peak (the patches and their contiguous float64 form); a
        # bare numpy MemoryError (or swapping) otherwise, before any solver's own check
        ensure_fits(
            2 * 8 * len(images) * regions * per_region * h,
            f"building the training patches ({len(images)} images x {regions} pooling regions x "
            f"{per_region} patches x {h} values)",
            "Pool over larger regions (pool_size, or None for global pooling), use a larger "
            "stride or a smaller filter, or fewer images.",
        )
    except SolverError as error:
        raise translate_solver_error(error) from None
    return _assemble(geometry.training_patches(images), y, activation, beta, loss, geometry)


def _assemble(
    patches: np.ndarray,
    y: np.ndarray,
    activation: ActivationLike,
    beta: float,
    loss: LossLike,
    geometry: ConvGeometry | None,
) -> PolySDP:
    targets = check_targets(y, len(patches))
    loss_object = get_loss(loss)
    loss_object.check_targets(targets)
    return PolySDP(
        patches=writable(np.ascontiguousarray(patches, dtype=np.float64)),
        targets=writable(targets),
        activation=get_activation(activation),
        beta=check_beta(beta),
        loss=loss_object,
        geometry=geometry,
    )


def nuclear_norm_program(
    X: np.ndarray, y: np.ndarray, *, beta: float, loss: LossLike = "squared"
) -> tuple[cp.Problem, cp.Variable]:
    """``min_W loss(diag(X W X^T), y) + beta ||W||_*`` over symmetric ``W``.

    The quadratic activation ``sigma(t) = t^2`` makes the SDP collapse to
    this problem; the eigen-decomposition of the optimal ``W`` is the network.
    """
    import cvxpy as cp

    features = as_float_array(X, "X", limit=FEATURE_LIMIT)
    targets = check_targets(y, len(features))
    if targets.shape[1] != 1:
        raise ValidationError("nuclear_norm_program takes a scalar target (1-D y)")
    loss_object = get_loss(loss)
    loss_object.check_targets(targets)  # (0/1 labels: another problem, or an unbounded one)
    weights = cp.Variable((features.shape[1],) * 2, symmetric=True, name="W")
    yhat = cp.reshape(
        cp.sum(cp.multiply(features @ weights, features), axis=1), (len(features), 1), order="C"
    )
    objective = loss_object.cvxpy(yhat, targets) + check_beta(beta) * cp.normNuc(weights)
    return cp.Problem(cp.Minimize(objective)), weights


def problem_for(
    X: Any,
    y: Any,
    *,
    activation: ActivationLike,
    beta: float,
    loss: LossLike,
    geometry: ConvGeometry | None,
) -> PolySDP:
    """:func:`make_problem`, or :func:`make_conv_problem` when ``geometry`` is given."""
    if geometry is None:
        return make_problem(X, y, activation=activation, beta=beta, loss=loss)
    return make_conv_problem(X, y, geometry, activation=activation, beta=beta, loss=loss)
