"""The neurons engine's iterate and model: predictions, objective and their derivatives.

Each neuron ``j`` is a vector ``v_j`` (length ``h``) with a fixed sign
``s_j`` and a block (region ``r_j``, output ``k_j``): it is the unit filter
``u_j = v_j / ||v_j||`` with output weight ``s_j ||v_j||^2``. With
``t_ipj = x_{i r_j p}^T v_j`` and ``nu_j = ||v_j||`` its contribution to
output ``k_j`` of sample ``i`` is
``s_j [mean_p (a t_ipj^2 + b nu_j t_ipj) + c nu_j^2]`` and its penalty
``beta nu_j^2``, so the objective is smooth in ``V`` (for a smooth loss)
and equals the SDP objective at the corresponding blocks.

Every product here costs ``O(n R P h m)`` for ``m`` neurons and never forms a
Jacobian (except :meth:`NeuronModel.jacobian`, for small problems). Every
sum over samples ends in :meth:`NeuronModel.reduce`, the one place where a
data-parallel run all-reduces (an ``m x h``, ``m x m`` or ``h x h``
array, or a scalar: never anything of size ``n``) through the model's
:class:`~convexnn.solvers._distributed.Communicator`; ``n`` is then this
rank's number of rows and :attr:`NeuronModel.n_total` the total.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from convexnn.solvers._distributed import LOCAL, Communicator


@dataclass
class NeuronState:
    """The iterate: neuron vectors, signs, regions and outputs."""

    V: torch.Tensor  # (m, h)
    signs: torch.Tensor  # (m,)
    regions: torch.Tensor  # (m,) long
    outputs: torch.Tensor  # (m,) long

    @property
    def width(self) -> int:
        return self.V.shape[0]

    def select(self, keep: torch.Tensor) -> NeuronState:
        return NeuronState(self.V[keep], self.signs[keep], self.regions[keep], self.outputs[keep])

    def extended(self, V, signs, regions, outputs) -> NeuronState:
        return NeuronState(
            torch.cat([self.V, V]),
            torch.cat([self.signs, signs]),
            torch.cat([self.regions, regions]),
            torch.cat([self.outputs, outputs]),
        )

    def moved(self, V: torch.Tensor) -> NeuronState:
        """The same neurons with new vectors ``V``."""
        return NeuronState(V, self.signs, self.regions, self.outputs)

    def unit_neurons(self, n_outputs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit filters ``(m, h)``, output weights ``s ||v||^2`` and blocks ``r C + k``."""
        nu = self.V.norm(dim=1)
        filters = (self.V / nu.clamp(min=1e-300)[:, None]).double().cpu().numpy()
        weights = (self.signs * nu * nu).double().cpu().numpy()
        blocks = (self.regions * n_outputs + self.outputs).cpu().numpy()
        return filters, weights, blocks

    def to(self, dtype: torch.dtype) -> NeuronState:
        """The state with vectors and signs in ``dtype``."""
        if self.V.dtype == dtype:
            return self
        return NeuronState(self.V.to(dtype), self.signs.to(dtype), self.regions, self.outputs)


class NeuronModel:
    """Predictions, objective and derivative products of a :class:`NeuronState`.

    Parameters
    ----------
    patches : Tensor of shape (n, R, P, h)
    targets : Tensor of shape (n, C)
    coefficients : (a, b, c)
    beta : float
    loss : SmoothLoss
    comm : Communicator, optional
        Completes the sums over samples of a data-parallel solve (each rank
        holding its own rows in ``patches`` and ``targets``).
    n_total : int, optional
        Samples over all ranks (default: ``n``).
    """

    def __init__(
        self, patches: torch.Tensor, targets: torch.Tensor, coefficients, beta: float, loss,
        comm: Communicator = LOCAL, n_total: int | None = None,
    ):
        self.patches = patches
        self.n, self.n_regions, self.pool, self.h = patches.shape
        self.flat = patches.reshape(-1, self.h)
        # Pool averages of the patches (a view when there is no pooling).
        self.mean_patches = patches[:, :, 0] if self.pool == 1 else patches.mean(dim=2)
        self.targets = targets
        self.n_outputs = targets.shape[1]
        self.a, self.b, self.c = (float(value) for value in coefficients)
        self.beta = beta
        self.loss = loss
        self.comm = comm
        self.n_total = self.n if n_total is None else int(n_total)

    @property
    def dtype(self) -> torch.dtype:
        return self.patches.dtype

    def reduce(self, value: torch.Tensor) -> torch.Tensor:
        """A sum over this process's samples, completed over all samples.

        The identity in a single process; the all-reduce point of a
        data-parallel solve (every caller passes an array whose size does not
        depend on ``n``).
        """
        return self.comm.all_reduce(value)

    # -- forward -------------------------------------------------------------
    def _gather(self, T: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """``(n, R, P, m)`` products to each neuron's own region: ``(n, P, m)``."""
        if self.n_regions == 1:
            return T[:, 0]
        index = regions.view(1, 1, 1, -1).expand(self.n, 1, self.pool, -1)
        return T.gather(1, index)[:, 0]

    def projections(self, W: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """``x_{i r_j p}^T w_j`` for every sample, patch and row of ``W``: ``(n, P, m)``."""
        T = (self.flat @ W.T).reshape(self.n, self.n_regions, self.pool, -1)
        return self._gather(T, regions)

    def _adjoint(
        self, kappa: torch.Tensor, regions: torch.Tensor, extra: torch.Tensor | None = None
    ):
        """``sum_{i,p} kappa_ipj x_{i r_j p}`` for coefficients ``(n, P, m)``: ``(m, h)``.

        With ``extra`` (this rank's sums of shape ``(k, m)``), both are reduced in
        one all-reduce and the pair is returned.
        """
        m = kappa.shape[2]
        if self.n_regions == 1:
            local = kappa.reshape(-1, m).T @ self.flat
        else:
            full = torch.zeros(
                (self.n, self.n_regions, self.pool, m), dtype=kappa.dtype, device=kappa.device
            )
            index = regions.view(1, 1, 1, -1).expand(self.n, 1, self.pool, -1)
            full.scatter_(1, index, kappa[:, None])
            local = full.reshape(-1, m).T @ self.flat
        if extra is None:
            return self.reduce(local)
        both = self.reduce(torch.cat([local, extra.to(local.dtype).T], dim=1))  # (m, h + k)
        return both[:, : self.h], both[:, self.h :].T

    def _outputs(self, phi: torch.Tensor, state: NeuronState) -> torch.Tensor:
        """Per-neuron contributions ``(n, m)`` summed into the outputs ``(n, C)``."""
        out = torch.zeros((self.n, self.n_outputs), dtype=phi.dtype, device=phi.device)
        out.index_add_(1, state.outputs, phi * state.signs)
        return out

    def forward(self, state: NeuronState):
        """Predictions ``(n, C)`` and the cache ``(t, nu)``."""
        t = self.projections(state.V, state.regions)  # (n, P, m)
        nu = state.V.norm(dim=1)
        phi = self.a * (t * t).mean(dim=1) + self.b * nu * t.mean(dim=1) + self.c * nu * nu
        return self._outputs(phi, state), (t, nu)

    def atoms(self, U: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """Activations ``mean_p sigma(x_{i r_j p}^T u_j)`` of unit rows ``U``: ``(n, m)``."""
        t = self.projections(U, regions)
        return (self.a * t * t + self.b * t + self.c).mean(dim=1)

    def loss_value(self, yhat: torch.Tensor) -> float:
        return float(self.reduce(self.loss.value(yhat, self.targets)))

    def objective(self, state: NeuronState, yhat: torch.Tensor) -> float:
        penalty = float((state.V * state.V).sum())
        return self.loss_value(yhat) + self.beta * penalty

    # -- derivatives ---------------------------------------------------------
    def vjp(self, state: NeuronState, cache, w: torch.Tensor) -> torch.Tensor:
        """``J^T w`` for ``w`` of shape ``(n, C)``; result ``(m, h)``."""
        t, nu = cache
        omega = w[:, state.outputs] * state.signs  # (n, m)
        kappa = omega[:, None, :] * (2 * self.a * t + self.b * nu) / self.pool  # (n, P, m)
        radial = (
            self.b * (omega * t.mean(dim=1)).sum(dim=0) / nu + 2 * self.c * omega.sum(dim=0)
        )
        adjoint, radial = self._adjoint(kappa, state.regions, radial[None])
        return adjoint + radial[0][:, None] * state.V

    def jvp(self, state: NeuronState, cache, D: torch.Tensor) -> torch.Tensor:
        """``J D`` for a direction ``D`` of shape ``(m, h)``; result ``(n, C)``."""
        _, _, phi = self._tangent(state, cache, cache[0].mean(dim=1), D)
        return self._outputs(phi, state)

    def _tangent(self, state: NeuronState, cache, t_mean: torch.Tensor, D: torch.Tensor):
        """Along ``D``: the projections' change ``(n, P, m)``, each ``||v_j||``'s ``(m,)`` and
        each neuron's contribution's ``(n, m)``."""
        t, nu = cache
        t_dir = self.projections(D, state.regions)
        nu_dir = (state.V * D).sum(dim=1) / nu
        phi = (
            2 * self.a * (t * t_dir).mean(dim=1)
            + self.b * (nu_dir * t_mean + nu * t_dir.mean(dim=1))
            + 2 * self.c * nu * nu_dir
        )
        return t_dir, nu_dir, phi

    def gradient(self, state: NeuronState, yhat: torch.Tensor, cache) -> torch.Tensor:
        return (
            self.vjp(state, cache, self.loss.gradient(yhat, self.targets))
            + 2 * self.beta * state.V
        )

    def hessian_product(
        self, state: NeuronState, yhat: torch.Tensor, cache
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """``D -> H D`` for the exact Hessian of the objective at ``state``.

        ``H = J^T H_loss J + sum_i g_i^T nabla^2 yhat_i + 2 beta I`` with
        ``g = grad loss``. The second term is what Gauss-Newton leaves out
        (it carries the oracle matrix ``sum_i g_i x_i x_i^T`` and makes the
        local convergence quadratic); per neuron it is
        ``(1/P) sum_p [2a x (x^T d) + b (x (v^T d) + (x^T d) v) / nu
        + b t (d - v (v^T d) / nu^2) / nu] + 2c d``, weighted by ``s_j g_ik_j``.
        One product costs two passes over the data (projections of ``D`` and
        one adjoint), like a Gauss-Newton product.
        """
        t, nu = cache
        V, regions = state.V, state.regions
        t_mean = t.mean(dim=1)
        g, g_sum, g_t, g_x = self._gradient_moments(state, yhat, t_mean)
        linear = 2 * self.a / self.pool

        def product(D: torch.Tensor) -> torch.Tensor:
            t_dir, nu_dir, phi = self._tangent(state, cache, t_mean, D)
            curvature = self.loss.hessian_vector(yhat, self.targets, self._outputs(phi, state))
            omega = curvature[:, state.outputs] * state.signs  # (n, m)
            # Gauss-Newton and the oracle-matrix term share one pass over the data.
            kappa = (
                omega[:, None, :] * (2 * self.a * t + self.b * nu) / self.pool
                + linear * g[:, None, :] * t_dir
            )
            g_t_dir = (g * t_dir.mean(dim=1)).sum(dim=0)
            radial_gn = self.b * (omega * t_mean).sum(dim=0) / nu + 2 * self.c * omega.sum(dim=0)
            adjoint, radial = self._adjoint(kappa, regions, torch.stack([radial_gn, g_t_dir]))
            return (
                adjoint
                + radial[0][:, None] * V
                + (self.b * nu_dir)[:, None] * g_x
                + (self.b * radial[1] / nu)[:, None] * V
                + (self.b * g_t / nu)[:, None] * (D - V * (nu_dir / nu)[:, None])
                + (2 * self.c * g_sum + 2 * self.beta)[:, None] * D
            )

        return product

    def _gradient_moments(self, state: NeuronState, yhat: torch.Tensor, t_mean: torch.Tensor):
        """The loss gradient per neuron ``w_ij = s_j g_{i k_j}`` ``(n, m)`` and its sums over
        samples (completed over ranks): ``sum_i w_ij``, ``sum_i w_ij tbar_ij`` and
        ``sum_i w_ij xbar_i`` over the neuron's region ``(m, h)``."""
        weights = self.loss.gradient(yhat, self.targets)[:, state.outputs] * state.signs
        g_sum, g_t = self.reduce(
            torch.stack([weights.sum(dim=0), (weights * t_mean).sum(dim=0)]))
        if self.n_regions == 1:
            g_x = self.reduce(weights.T @ self.mean_patches[:, 0])
        else:
            per_region = self.reduce(torch.einsum("nm,nrh->rmh", weights, self.mean_patches))
            g_x = per_region[state.regions, torch.arange(state.width, device=weights.device)]
        return weights, g_sum, g_t, g_x

    def curvature_blocks(self, state: NeuronState, yhat: torch.Tensor, cache) -> torch.Tensor:
        """The Hessian's second-order term per neuron, ``(m, h, h)``: what Gauss-Newton leaves out.

        The dense form of the per-neuron term of :meth:`hessian_product` (with
        ``2c sum g`` but without ``2 beta I``): ``(2a/P) sum_{i,p} w_i x x^T
        + b (m v^T + v m^T) / nu + b (sum_i w_i tbar_i) (I - v v^T / nu^2) / nu
        + 2c (sum_i w_i) I``, with ``w_i = s_j g_{i k_j}`` and ``m = sum_i w_i
        xbar_i``. Neurons of one output and region share the outer-product sum,
        formed once per pair: ``O(n P h^2 C R)``.
        """
        t, nu = cache
        V = state.V
        g = self.loss.gradient(yhat, self.targets)  # (n, C)
        _, g_sum, g_t, g_x = self._gradient_moments(state, yhat, t.mean(dim=1))
        blocks = torch.empty((state.width, self.h, self.h), dtype=V.dtype, device=V.device)
        for r in range(self.n_regions):
            patches = self.patches[:, r]  # (n, P, h)
            for k in range(self.n_outputs):
                members = ((state.regions == r) & (state.outputs == k)).nonzero().flatten()
                if len(members):
                    outer = self.reduce(torch.einsum("n,nph,npj->hj", g[:, k], patches, patches))
                    blocks[members] = (2 * self.a / self.pool) * outer * state.signs[
                        members, None, None]
        eye = torch.eye(self.h, dtype=V.dtype, device=V.device)
        unit = V / nu[:, None]
        blocks += (self.b / nu)[:, None, None] * (
            g_x[:, :, None] * V[:, None, :] + V[:, :, None] * g_x[:, None, :])
        blocks += (self.b * g_t / nu)[:, None, None] * (
            eye - unit[:, :, None] * unit[:, None, :])
        blocks += (2 * self.c * g_sum)[:, None, None] * eye
        return blocks

    def neuron_jacobian(self, state: NeuronState, cache) -> torch.Tensor:
        """Each neuron's derivative of its own output, ``(n, m, h)``: the nonzeros of
        :meth:`jacobian` (a neuron feeds one output)."""
        t, nu = cache
        m = state.width
        coefficient = (2 * self.a * t + self.b * nu) * state.signs / self.pool  # (n, P, m)
        J = torch.empty((self.n, m, self.h), dtype=t.dtype, device=t.device)
        for r in range(self.n_regions):
            members = (state.regions == r).nonzero().flatten()
            if len(members):
                J[:, members] = torch.einsum(
                    "npm,nph->nmh", coefficient[:, :, members], self.patches[:, r]
                )
        radial = (self.b * t.mean(dim=1) / nu + 2 * self.c) * state.signs  # (n, m)
        J += radial[:, :, None] * state.V[None]
        return J

    def jacobian(self, state: NeuronState, cache) -> torch.Tensor:
        """Dense Jacobian of the outputs, ``(n, C, m h)`` (outputs of other neurons are 0)."""
        J = self.neuron_jacobian(state, cache)
        m = state.width
        full = torch.zeros((self.n, self.n_outputs, m, self.h), dtype=J.dtype, device=J.device)
        full[:, state.outputs, torch.arange(m)] = J
        return full.reshape(self.n, self.n_outputs, m * self.h)

    def loss_hessians(self, yhat: torch.Tensor) -> torch.Tensor:
        """The per-sample loss Hessians ``H_i``, ``(n, C, C)`` (symmetrised)."""
        C = self.n_outputs
        eye = torch.eye(C, dtype=yhat.dtype, device=yhat.device)
        columns = torch.stack(
            [
                self.loss.hessian_vector(yhat, self.targets, eye[k].expand_as(yhat))
                for k in range(C)
            ],
            dim=2,
        )  # (n, C, C): H_i e_k in column k
        return 0.5 * (columns + columns.transpose(1, 2))

    def loss_curvature_root(self, yhat: torch.Tensor) -> torch.Tensor:
        """``H_i^{1/2}`` of the per-sample loss Hessians, ``(n, C, C)``."""
        values, vectors = torch.linalg.eigh(self.loss_hessians(yhat))
        return (vectors * values.clamp(min=0).sqrt()[:, None, :]) @ vectors.transpose(1, 2)
