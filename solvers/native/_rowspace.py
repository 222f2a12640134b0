"""Wide data: the exact reduction of the SDP to the row space of the patches.

Only the projections ``x^T u`` of the neurons onto the patches enter the
objective. When the ``N = n R P`` patch vectors span a subspace of
dimension ``r`` with ``r + 1 < h`` (always the case for wide data, ``N < h``),
write ``x = B a`` with an orthonormal basis ``B`` (``h x r``) of that row
space and coordinates ``a = B^T x``. A unit neuron ``u`` acts through
``w = B^T u``, a point of the unit *ball* of ``R^r``, and every point of the
ball is reached. Appending one zero coordinate to every patch,
``a' = [a; 0]``, turns the ball into the unit sphere of ``R^(r+1)``:
``w' = [w; z]`` with ``z = sqrt(1 - ||w||^2)`` is a unit vector with
``a'^T w' = x^T u``. So the SDP on the patches ``a'`` (size ``r + 1``) has
exactly the optimum of the original one, its dual constraint is the same
maximum over the same set of values, and a dual point certified on one is
certified on the other.

Mapping back. A reduced neuron ``w' = [w; z]`` is a neuron of norm
``||w|| <= 1`` *inside* the row space plus a remainder ``z``. The part of a
neuron orthogonal to the data does not change the training objective but
does change predictions on new points, so it is chosen deliberately:

* the solution *is* the row-space network ``u = B w`` (no orthogonal part),
  whose neurons have norm ``<= 1``;
* :class:`~convexnn.TwoLayerPolyNet` normalises its neurons, so a neuron of
  norm ``< 1`` cannot be stored as it is (``sigma(s t)`` is not a multiple
  of ``sigma(t)`` unless ``b = c = 0``). The returned unit neuron is
  ``u = B w + z e`` with one fixed unit vector ``e`` orthogonal to the row
  space: the coordinate axis farthest from it (for data with a feature that
  is zero in every training sample, e.g. an always-black pixel, that very
  axis). The network equals the row-space network on every point ``x``
  with ``x^T e = 0`` -- all training points, and every new point whose
  feature ``e`` is zero -- and elsewhere differs by ``z x^T e`` inside the
  activation of that neuron. With a pure quadratic activation every optimal
  neuron has ``z = 0`` and the two coincide everywhere.

``(Z, Z')`` blocks (the interior point's solution) are decomposed into
neurons in the reduced space, where that is cheap, and mapped back as
neurons.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from convexnn.solvers.base import LossProtocol, Neurons, SolverOutput
from convexnn.solvers.certificate import unit_normal

logger = logging.getLogger("convexnn")


@dataclass(frozen=True)
class ReducedProblem:
    """An :class:`~convexnn.solvers.base.SDPProblem` on the reduced patches."""

    patches: np.ndarray
    targets: np.ndarray
    coefficients: tuple[float, float, float]
    beta: float
    loss: LossProtocol


@dataclass(frozen=True)
class RowSpace:
    """An orthonormal basis of the patches' row space and the unit normal ``e``.

    Attributes
    ----------
    basis : ndarray of shape (h, r)
        Orthonormal columns spanning the patch vectors.
    normal : ndarray of shape (h,)
        The unit vector orthogonal to ``basis`` that carries a neuron's
        remaining norm (see the module docstring).
    """

    basis: np.ndarray
    normal: np.ndarray

    def embedding(self) -> np.ndarray:
        """``[B, e]`` of shape ``(h, r + 1)``: reduced neuron -> unit neuron."""
        return np.column_stack([self.basis, self.normal])

    def reduce(self, problem) -> ReducedProblem:
        """The same SDP on the ``r + 1`` coordinates ``[B^T x; 0]`` of every patch."""
        patches = np.asarray(problem.patches, dtype=np.float64)
        coordinates = patches @ self.basis
        zero = np.zeros(patches.shape[:3] + (1,))
        return ReducedProblem(
            patches=np.concatenate([coordinates, zero], axis=3),
            targets=problem.targets,
            coefficients=problem.coefficients,
            beta=problem.beta,
            loss=problem.loss,
        )

    def reduce_output(self, output: SolverOutput) -> SolverOutput | None:
        """A warm start of the original problem as one of the reduced problem.

        Neurons map exactly (``w' = [B^T u; sqrt(1 - ||B^T u||^2)]`` acts on
        the data as ``u`` does); blocks map to ``L^T Z L`` with ``L`` the
        lift of :meth:`lift` (exact for blocks this reduction produced).
        ``None`` (a cold start) for an output of another number of features.
        """
        h = self.basis.shape[0]
        if output.neurons is not None:
            if np.asarray(output.neurons.U).shape[-1] != h:
                return None
        elif output.blocks is None or any(np.shape(z) != (h + 1, h + 1)
                                          for z, _ in output.blocks):
            return None
        reduced = SolverOutput(status=output.status, objective=output.objective,
                               iterations=output.iterations, solve_time=0.0,
                               # produced on the reduced problem; the engine checks it
                               engine_state=output.engine_state)
        if output.neurons is not None:
            inside = np.asarray(output.neurons.U) @ self.basis
            slack = np.sqrt(np.clip(1.0 - np.sum(inside * inside, axis=1), 0.0, None))
            reduced.neurons = Neurons(U=np.column_stack([inside, slack]),
                                      alpha=output.neurons.alpha, blocks=output.neurons.blocks)
        else:
            lift = self._block_lift()
            reduced.blocks = [(lift.T @ z @ lift, lift.T @ zn @ lift) for z, zn in output.blocks]
        return reduced

    def _block_lift(self) -> np.ndarray:
        """``L = [[B, e, 0], [0, 0, 1]]``, ``(h + 1) x (r + 2)``."""
        embedding = self.embedding()
        h = embedding.shape[0]
        lift = np.zeros((h + 1, embedding.shape[1] + 1))
        lift[:h, :-1] = embedding
        lift[h, -1] = 1.0
        return lift

    def lift(self, output: SolverOutput, rtol: float = 1e-9) -> SolverOutput:
        """Map an output of the reduced problem back to the original features.

        Blocks are decomposed into neurons in the reduced space (eigenvalues
        below ``rtol`` of a block's largest dropped), where it is cheap, and
        the neurons are mapped back.
        """
        from convexnn.solvers.native._consolidate import neurons_from_blocks

        embedding = self.embedding()
        if output.blocks is not None and output.neurons is None:
            output.neurons = neurons_from_blocks(output.blocks, rtol)
            output.blocks = None
        if output.neurons is not None:
            neurons = output.neurons
            U = np.asarray(neurons.U) @ embedding.T
            U /= np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-300)  # rounding only
            output.neurons = Neurons(U=U, alpha=neurons.alpha, blocks=neurons.blocks)
            inside = np.linalg.norm(np.asarray(neurons.U)[:, :-1], axis=1)
            output.stats["row_space_norm_min"] = float(inside.min()) if inside.size else 1.0
        output.stats["row_space_rank"] = self.basis.shape[1]
        return output


def find_row_space(patches: np.ndarray) -> RowSpace | None:
    """The row space of wide patches, or ``None`` when the reduction would not shrink ``h``.

    Only wide patch matrices (fewer patch vectors than features) are
    examined, by a thin SVD (``O(N^2 h)``); the rank uses NumPy's
    ``matrix_rank`` tolerance, ``s_max * max(N, h) * eps``.
    """
    h = patches.shape[-1]
    flat = np.asarray(patches, dtype=np.float64).reshape(-1, h)
    if flat.shape[0] + 1 >= h:
        return None
    _, singular, vt = np.linalg.svd(flat, full_matrices=False)
    top = float(singular.max()) if singular.size else 0.0
    rank = int(np.sum(singular > top * max(flat.shape) * np.finfo(np.float64).eps))
    if rank == 0 or rank + 1 >= h:
        return None
    basis = vt[:rank].T
    normal = unit_normal(basis)
    logger.info(
        "native: wide data (%d patch vectors, %d features); solving in the row space "
        "(rank %d, %d dimensions)", flat.shape[0], h, rank, rank + 1,
    )
    return RowSpace(basis=basis, normal=normal)
