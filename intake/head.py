"""The trained head of triage: softmax regression over a complaint's features, in numpy.

Fitted by L-BFGS (a small implementation below: two-loop recursion, backtracking line search
on the Armijo condition) on the mean cross-entropy plus an L2 penalty on the weights. No
randomness anywhere: the weights start at zero and the same examples give the same head, so a
model's version (its bytes' hash) is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

Matrix = npt.NDArray[np.float64]


def softmax(logits: Matrix) -> Matrix:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: Matrix = exp / exp.sum(axis=1, keepdims=True)
    return result


@dataclass(frozen=True)
class Features:
    """Rows of features: a dense block, then a sparse one given by its nonzero entries
    (``rows``, ``columns``, ``values``) in ``width`` columns (hashed n-grams: a few dozen of
    thousands per row, so products with it cost what its nonzeros cost)."""

    dense: Matrix
    rows: npt.NDArray[np.int64]
    columns: npt.NDArray[np.int64]
    values: Matrix
    width: int

    @property
    def count(self) -> int:
        return int(self.dense.shape[0])

    @property
    def dims(self) -> int:
        return int(self.dense.shape[1]) + self.width

    def times(self, weights: Matrix) -> Matrix:
        """features @ weights."""
        split = self.dense.shape[1]
        result: Matrix = self.dense @ weights[:split]
        if self.values.size:
            # Rows are sorted: sum each row's weighted n-gram rows in one pass.
            present, starts = np.unique(self.rows, return_index=True)
            sparse = weights[split:][self.columns] * self.values[:, None]
            result[present] += np.add.reduceat(sparse, starts, axis=0)
        return result

    def transposed_times(self, residual: Matrix) -> Matrix:
        """features.T @ residual."""
        split = self.dense.shape[1]
        result = np.zeros((self.dims, residual.shape[1]))
        result[:split] = self.dense.T @ residual
        for k in range(residual.shape[1]):
            result[split:, k] = np.bincount(
                self.columns, weights=self.values * residual[self.rows, k], minlength=self.width
            )
        return result


@dataclass(frozen=True)
class SoftmaxHead:
    """``weights`` (features x classes) and ``bias`` (classes)."""

    weights: Matrix
    bias: Matrix

    def probabilities(self, features: Features) -> Matrix:
        return softmax(features.times(self.weights) + self.bias)


def fit_head(
    features: Features, labels: npt.NDArray[np.int64], classes: int, *, l2: float = 1e-3, iterations: int = 300
) -> SoftmaxHead:
    """The head minimising mean cross-entropy + ``l2``/2 * |weights|^2 (the bias is not penalised)."""
    count, dims = features.count, features.dims
    targets = np.zeros((count, classes))
    targets[np.arange(count), labels] = 1.0

    def loss_and_gradient(theta: Matrix) -> tuple[float, Matrix]:
        weights = theta[: dims * classes].reshape(dims, classes)
        bias = theta[dims * classes :]
        logits = features.times(weights) + bias
        logits -= logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1, keepdims=True))
        log_p = logits - log_norm
        loss = -float((targets * log_p).sum()) / count + 0.5 * l2 * float((weights * weights).sum())
        residual = (np.exp(log_p) - targets) / count
        grad_w = features.transposed_times(residual) + l2 * weights
        grad_b = residual.sum(axis=0)
        return loss, np.concatenate([grad_w.ravel(), grad_b])

    # One BLAS thread: the products are small, and threads contending on a busy two-core server
    # made fitting several times slower.
    with threadpool_limits(limits=1, user_api="blas"):
        theta = lbfgs(loss_and_gradient, np.zeros(dims * classes + classes), iterations=iterations)
    return SoftmaxHead(theta[: dims * classes].reshape(dims, classes).copy(), theta[dims * classes :].copy())


def lbfgs(
    objective: Callable[[Matrix], tuple[float, Matrix]],
    start: Matrix,
    *,
    iterations: int = 300,
    memory: int = 10,
    tolerance: float = 1e-6,
) -> Matrix:
    """Minimise a smooth ``objective`` (value, gradient) from ``start`` with limited-memory BFGS."""
    theta = start.astype(np.float64)
    value, grad = objective(theta)
    steps: list[Matrix] = []
    changes: list[Matrix] = []
    for _ in range(iterations):
        if float(np.abs(grad).max()) < tolerance:
            break
        # Two-loop recursion: the search direction -H * grad from the last ``memory`` pairs.
        direction = -grad
        alphas: list[float] = []
        for s, y in zip(reversed(steps), reversed(changes), strict=True):
            alpha = float(s @ direction) / float(y @ s)
            alphas.append(alpha)
            direction = direction - alpha * y
        if steps:
            direction = direction * (float(steps[-1] @ changes[-1]) / float(changes[-1] @ changes[-1]))
        for (s, y), alpha in zip(zip(steps, changes, strict=True), reversed(alphas), strict=True):
            beta = float(y @ direction) / float(y @ s)
            direction = direction + (alpha - beta) * s
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction: start the memory again
            steps.clear()
            changes.clear()
            direction = -grad
            slope = float(grad @ direction)
        step = 1.0
        while True:
            candidate = theta + step * direction
            new_value, new_grad = objective(candidate)
            if new_value <= value + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s_k, y_k = candidate - theta, new_grad - grad
        if float(s_k @ y_k) > 1e-10:
            steps.append(s_k)
            changes.append(y_k)
            if len(steps) > memory:
                steps.pop(0)
                changes.pop(0)
        converged = abs(value - new_value) <= tolerance * max(1.0, abs(value))
        theta, value, grad = candidate, new_value, new_grad
        if converged:
            break
    return theta
