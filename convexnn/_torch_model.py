"""The torch model of the two-layer polynomial-activation network, in one place.

:meth:`convexnn.network.TwoLayerPolyNet.to_torch` exports a network as this
module and :mod:`convexnn.baselines` trains this module by backprop, so the
forward pass (first layer, activation, average pooling, output weights)
is written once.

The convolutional forward pass computes ``Conv2d -> sigma -> AvgPool2d``
without materialising the ``(n, m, H', W')`` activations: since ``sigma`` is
a quadratic, the average over a pooling region ``r`` of ``sigma(u^T x_p)``
is ``a u^T S_r u + b u^T xbar_r + c`` with the region's patch moments
``S_r = (1/P) sum_p x_p x_p^T`` and ``xbar_r = (1/P) sum_p x_p`` (the lifted
features of the convex program). The moments cost ``O(n K h^2)`` for ``K``
patches of ``h`` values, the pass ``O(n R m h^2)``; the plain pass costs
``O(n K m h)`` and holds ``n m K`` activations (310 MB for the 10-class
digits CNN at the default width), which made each epoch tens of times slower.
"""

from __future__ import annotations

import warnings

import torch

from convexnn.exceptions import ValidationError
from convexnn.patches import ConvGeometry

__all__ = ["TorchPolyNet"]


def check_floating_dtype(dtype: object) -> torch.dtype:
    """``dtype`` if it is a floating-point torch dtype (a module's weights need one)."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValidationError(
            f"dtype must be a floating-point torch dtype (torch.float64, torch.float32), "
            f"got {dtype!r}"
        )
    return dtype


class TorchPolyNet(torch.nn.Module):
    """``f(x)_k = sum_j sum_r alpha_jrk (1/P) sum_{p in r} sigma(u_j^T x_rp)`` in torch.

    Fully connected (``geometry=None``): ``f(x)_k = sum_j alpha_jk sigma(u_j^T x)``
    through a ``Linear`` first layer; convolutional: a ``Conv2d`` first layer,
    then average pooling over each of the ``R`` pooling regions.

    Parameters
    ----------
    weight : Tensor of shape (m, h)
        First-layer weights, one row per neuron (a flattened filter of
        ``h = geometry.patch_size`` values when convolutional). Copied; its
        dtype and device are the module's.
    alpha : Tensor of shape (m, R, C)
        Output weights per neuron, pooling region (``R = 1`` when fully
        connected) and output. Copied.
    coefficients : (a, b, c)
        The activation ``sigma(t) = a t^2 + b t + c``.
    geometry : ConvGeometry, optional
        Makes the network convolutional.
    single_output : bool
        Return outputs of shape ``(n,)`` instead of ``(n, 1)`` (``C`` must be 1).
    unit_norm : bool, default=False
        Use ``u_j = w_j / ||w_j||`` in the forward pass: the unit-norm
        constraint of the convex problem by reparametrisation, so training
        this module keeps it. False uses the rows as they are (a
        :class:`~convexnn.network.TwoLayerPolyNet` has unit rows already).

    Attributes
    ----------
    first : torch.nn.Linear or torch.nn.Conv2d
        The first layer (no bias); ``first.weight`` is a parameter.
    alpha : torch.nn.Parameter of shape (m, R, C)
    coefficients, geometry, single_output, unit_norm
        As given.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        alpha: torch.Tensor,
        coefficients: tuple[float, float, float],
        *,
        geometry: ConvGeometry | None = None,
        single_output: bool,
        unit_norm: bool = False,
    ) -> None:
        super().__init__()
        self.coefficients = coefficients
        self.geometry = geometry
        self.single_output = single_output
        self.unit_norm = unit_norm
        neurons = weight.shape[0]
        factory = {"bias": False, "dtype": weight.dtype, "device": weight.device}
        # skip_init: the weights are overwritten below, and torch's default
        # initialisation would draw from (and so change) the global RNG. Without neurons
        # (the zero network) torch warns that initialising an empty tensor does nothing.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Initializing zero-element tensors",
                                    UserWarning)
            if geometry is None:
                self.first = torch.nn.utils.skip_init(
                    torch.nn.Linear, weight.shape[1], neurons, **factory
                )
            else:
                self.first = torch.nn.utils.skip_init(
                    torch.nn.Conv2d, geometry.image_shape[0], neurons, geometry.filter_size,
                    stride=geometry.stride, **factory,
                )
        self.alpha = torch.nn.Parameter(alpha.detach().clone())
        with torch.no_grad():
            self.first.weight.copy_(weight.reshape(self.first.weight.shape))
        if geometry is not None:
            self.register_buffer(
                "region_positions", _region_positions(geometry, weight.device), persistent=False
            )

    def neuron_weights(self, unit_norm: bool | None = None) -> torch.Tensor:
        """The first-layer weights of the forward pass, shaped as ``first.weight``.

        Parameters
        ----------
        unit_norm : bool, optional
            Divide each neuron's weights by their norm; default the module's
            ``unit_norm``.
        """
        weight = self.first.weight
        if not (self.unit_norm if unit_norm is None else unit_norm):
            return weight
        norms = torch.linalg.vector_norm(weight.flatten(1), dim=1)
        return weight / norms.reshape(-1, *(1,) * (weight.dim() - 1))

    def forward(self, x: torch.Tensor, unit_norm: bool | None = None) -> torch.Tensor:
        """Network outputs.

        Parameters
        ----------
        x : Tensor
            Features ``(n, d)``; when convolutional, images: ``n`` first and
            ``geometry.n_pixels`` values per sample.
        unit_norm : bool, optional
            Use unit-norm neurons; default the module's ``unit_norm``. (The
            baselines evaluate a weight-decay run's convex objective this way.)

        Returns
        -------
        Tensor
            ``(n, C)``, or ``(n,)`` when ``single_output``.
        """
        a, b, c = self.coefficients
        weight = self.neuron_weights(unit_norm)
        if self.geometry is None:
            t = torch.nn.functional.linear(x, weight)
            # A matrix product with alpha's (m, C) view rather than the einsum
            # below: for some shapes torch's einsum sums in another order, and
            # this keeps the baselines' trajectories what they have always been.
            out = (a * t * t + b * t + c) @ self.alpha[:, 0, :]
        else:
            second, first = self.patch_moments(x)  # (n, R, h, h), (n, R, h)
            U = weight.flatten(1)  # (m, h)
            outer = (U[:, :, None] * U[:, None, :]).flatten(1)  # (m, h * h): u u^T
            pooled = a * (second.flatten(2) @ outer.T) + b * (first @ U.T) + c  # (n, R, m)
            out = torch.einsum("nrm,mrk->nk", pooled, self.alpha)
        return out[:, 0] if self.single_output else out

    def patch_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each pooling region's mean patch outer product and mean patch (convolutional).

        Parameters
        ----------
        x : Tensor
            Images, ``n`` first and ``geometry.n_pixels`` values per sample.

        Returns
        -------
        second : Tensor of shape (n, R, h, h)
            ``(1/P) sum_{p in r} x_p x_p^T``.
        first : Tensor of shape (n, R, h)
            ``(1/P) sum_{p in r} x_p``.
        """
        g = self.geometry
        columns = torch.nn.functional.unfold(
            x.reshape(len(x), *g.image_shape), g.filter_size, stride=g.stride
        )  # (n, h, positions), patches in (channel, row, column) order
        patches = columns[:, :, self.region_positions].permute(0, 2, 3, 1)  # (n, R, P, h)
        second = patches.transpose(2, 3) @ patches / patches.shape[2]
        return second, patches.mean(dim=2)


def _region_positions(geometry: ConvGeometry, device: torch.device) -> torch.Tensor:
    """``(R, P)``: the convolution's output positions (row-major) in each pooling region.

    Regions and the positions inside them are in row-major order, as
    :meth:`ConvGeometry.patches <convexnn.patches.ConvGeometry.patches>` and
    ``AvgPool2d`` order them; positions outside whole windows are dropped.
    """
    rows, cols = geometry.output_grid
    grid = torch.arange(rows * cols, device=device).reshape(rows, cols)
    if geometry.pool_size is None:
        return grid.reshape(1, -1)
    ph, pw = geometry.pool_size
    pr, pc = geometry.pooled_grid
    windows = grid[: pr * ph, : pc * pw].reshape(pr, ph, pc, pw).permute(0, 2, 1, 3)
    return windows.reshape(pr * pc, ph * pw)
