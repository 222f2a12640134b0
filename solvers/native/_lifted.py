"""The linear map ``A`` from PSD blocks to predictions, and what the IPM needs of it.

For one block (region ``r``) ``A(W)_i = tr(A_i W)`` with
``A_i = (1/P) sum_p B_ip K B_ip^T``, ``B_ip = [[x_irp, 0], [0, 1]]`` and
``K = [[a, b/2], [b/2, c]]``. The interior-point method needs ``A``, its
adjoint and the Schur complement ``M_ij = tr(A_i X A_j S^{-1})``.

Two implementations share one interface:

* :class:`GramOperator` (fully connected, ``P = 1``): ``M`` is assembled from
  the ``n x n`` Gram-like matrices ``X Z11 X^T`` and ``X S^{-1}_11 X^T`` in
  ``O(n^2 h + n h^2)`` without ever forming the lifted matrices;
* :class:`LiftedOperator` (pooling, small patches): the pooled matrices
  ``A_i`` are stored (``n (h+1)^2`` numbers) and ``M`` costs
  ``O(n h^3 + n^2 h^2)``.
"""

from __future__ import annotations

import torch


def _activation_matrix(coefficients: tuple[float, float, float], dtype, device) -> torch.Tensor:
    a, b, c = coefficients
    return torch.tensor([[a, b / 2], [b / 2, c]], dtype=dtype, device=device)


class GramOperator:
    """``A`` for one fully connected block, data ``X`` of shape ``(n, h)``."""

    def __init__(self, X: torch.Tensor, coefficients: tuple[float, float, float]) -> None:
        self.X = X
        self.a, self.b, self.c = coefficients
        self.n, self.h = X.shape

    def apply(self, W: torch.Tensor) -> torch.Tensor:
        """``(tr(A_i W))_i`` (only the symmetric part of ``W`` matters)."""
        h = self.h
        quadratic = ((self.X @ W[:h, :h]) * self.X).sum(dim=1)
        linear = self.X @ (W[:h, h] + W[h, :h])
        return self.a * quadratic + (0.5 * self.b) * linear + self.c * W[h, h]

    def adjoint(self, lam: torch.Tensor) -> torch.Tensor:
        """``sum_i lam_i A_i``."""
        h = self.h
        out = torch.empty((h + 1, h + 1), dtype=lam.dtype, device=lam.device)
        out[:h, :h] = self.a * ((self.X.T * lam) @ self.X)
        linear = (0.5 * self.b) * (self.X.T @ lam)
        out[:h, h] = linear
        out[h, :h] = linear
        out[h, h] = self.c * lam.sum()
        return out

    def add_schur(self, M: torch.Tensor, Xm: torch.Tensor, S_inv: torch.Tensor) -> None:
        """``M += [tr(A_i Xm A_j S_inv)]_ij`` (Xm, S_inv symmetric).

        With ``Phi_ij = B_i^T Xm B_j`` and ``Psi_ij = B_i^T S_inv B_j`` (2x2) the
        entry is ``<Phi_ij, K Psi_ij K>``. For ``a != 0`` this collapses to
        ``a^2 (Xt Xm Xt^T) o (Xt S_inv Xt^T) + w 1^T + 1 w^T`` with augmented
        rows ``xt_i = [x_i; b/(2a)]`` (one Hadamard product, few passes over
        the ``n x n`` matrix); ``a = 0`` (no quadratic term) uses the expanded form.
        """
        X, h = self.X.to(M.dtype), self.h
        k00, k01, k11 = self.a, 0.5 * self.b, self.c
        if k00 != 0.0:
            rho = k01 / k00
            augmented = torch.cat(
                [X, torch.full((self.n, 1), rho, dtype=X.dtype, device=X.device)], dim=1
            )
            P = (augmented @ Xm) @ augmented.T
            Q = (augmented @ S_inv) @ augmented.T
            M.addcmul_(P, Q, value=k00 * k00)
            p, p22 = X @ Xm[:h, h], float(Xm[h, h])
            q, q22 = X @ S_inv[:h, h], float(S_inv[h, h])
            det = k00 * k11 - k01 * k01
            w = (
                det * (p * q + rho * (q22 * p + p22 * q))
                + 0.5 * det / k00 * (k11 + k01 * rho) * p22 * q22
            )
            M.add_(w[:, None]).add_(w[None, :])
            return
        P = (X @ Xm[:h, :h]) @ X.T
        Q = (X @ S_inv[:h, :h]) @ X.T
        p, p22 = X @ Xm[:h, h], float(Xm[h, h])
        q, q22 = X @ S_inv[:h, h], float(S_inv[h, h])
        # a = 0: <Phi, K Psi K> with K = [[0, b/2], [b/2, c]]
        Q.mul_((k01 * k01) * p22)
        P.mul_((k01 * k01) * q22).add_(Q)
        P.addr_(p, q, alpha=k01 * k01).addr_(q, p, alpha=k01 * k01)
        z = k01 * k11 * (q22 * p + p22 * q) + 0.5 * k11 * k11 * p22 * q22
        P.add_(z[:, None]).add_(z[None, :])
        M.add_(P)

    def apply_factor(self, U: torch.Tensor) -> torch.Tensor:
        """``(A_i U)_i`` of shape ``(n, h+1, r)`` for ``U`` of shape ``(h+1, r)``."""
        h = self.h
        q = self.X @ U[:h]  # (n, r)
        top = self.X[:, :, None] * (self.a * q + (0.5 * self.b) * U[h])[:, None, :]
        last = (0.5 * self.b) * q + self.c * U[h]
        return torch.cat([top, last[:, None, :]], dim=1)


class LiftedOperator:
    """``A`` for one pooled block, from patches of shape ``(n, P, h)``."""

    def __init__(self, patches: torch.Tensor, coefficients: tuple[float, float, float]) -> None:
        n, pool, h = patches.shape
        K = _activation_matrix(coefficients, patches.dtype, patches.device)
        ones = torch.ones((n, pool, 1), dtype=patches.dtype, device=patches.device)
        F = torch.cat([patches, ones], dim=2)  # (n, P, h+1)
        # A_i = (1/P) sum_p F_p F_p^T scaled entrywise by the activation pattern
        pattern = torch.full(
            (h + 1, h + 1), K[0, 0].item(), dtype=patches.dtype, device=patches.device
        )
        pattern[:h, h] = pattern[h, :h] = K[0, 1]
        pattern[h, h] = K[1, 1]
        self.matrices = torch.einsum("npi,npj->nij", F, F).div_(pool).mul_(pattern)
        self.n, self.h = n, h

    def apply(self, W: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nij,ij->n", self.matrices, W)

    def adjoint(self, lam: torch.Tensor) -> torch.Tensor:
        return torch.einsum("n,nij->ij", lam, self.matrices)

    def add_schur(self, M: torch.Tensor, Xm: torch.Tensor, S_inv: torch.Tensor) -> None:
        matrices = self.matrices.to(M.dtype)
        transformed = Xm @ matrices @ S_inv  # (n, N, N)
        M.add_(matrices.reshape(self.n, -1) @ transformed.reshape(self.n, -1).T)

    def apply_factor(self, U: torch.Tensor) -> torch.Tensor:
        """``(A_i U)_i`` of shape ``(n, h+1, r)`` for ``U`` of shape ``(h+1, r)``."""
        return self.matrices @ U


def make_operator(patches: torch.Tensor, coefficients: tuple[float, float, float]):
    """The cheaper exact operator for one region's patches ``(n, P, h)``."""
    if patches.shape[1] == 1:
        return GramOperator(patches[:, 0], coefficients)
    return LiftedOperator(patches, coefficients)
