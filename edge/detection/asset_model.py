"""AssetModel: the joint normal behaviour of one asset's sensors (PCA with T² and SPE).

Catches faults where each sensor alone looks normal but their relation breaks (a pump drawing
more current for the same flow and pressure). Rows (see `asset_rows`) are standardised by each
sensor's mean and deviation; principal components explaining `explained_variance` of the
correlation carry the asset's normal modes (load, duty). Two statistics judge a row:

- T², the distance along those modes in units of their own spread (an unusual operating point);
- SPE (Q), the squared residual off them (a broken relation between sensors).

Each is scored by a `TailModel` of its own history (one-sided), the smaller probability times
two is the asset's, and it becomes a rate per day by the asset's row rate, like a sensor's.
Contributions split the deciding statistic by sensor (SPE: squared residuals; T²: the
complete decomposition z_i (P Λ⁻¹ Pᵀ z)_i, negatives dropped), so an alert names where to look.

Learning: the first half of `learning_rows` fits the model, the second half seeds the tails
out of sample, then the model is refitted on all of them. Afterwards mean, deviation and
correlation adapt slowly (EWMA over `horizon_rows`, eigenvectors refreshed every 50 rows), and
never from rows where the asset model or any of its sensors is a candidate or in alert.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.detection.settings import AssetModelSettings
from edge.detection.tails import TailModel

_REFRESH_ROWS = 50
_MIN_STD_FRACTION = 1e-6  # a deviation floor relative to the level, for constant columns
_TOP_CONTRIBUTORS = 3


class AssetModel:
    """The PCA model of one asset; `update` judges one row and learns it unless told not to."""

    __slots__ = ("_alpha", "_components", "_corr", "_explained", "_inverse", "_learning",
                 "_learning_rows", "_mean", "_rows", "_since_refresh", "_spe", "_std", "_t2",
                 "_var", "columns", "kind", "last_contributions")

    def __init__(self, columns: int, settings: AssetModelSettings, seed: int) -> None:
        self.columns = columns
        self._learning_rows = settings.learning_rows
        self._alpha = 1.0 / settings.horizon_rows
        self._explained = settings.explained_variance
        self._learning: list[np.ndarray] | None = []
        self._mean = np.zeros(columns)
        self._var = np.ones(columns)
        self._std = np.ones(columns)
        self._corr = np.eye(columns)
        self._components = np.eye(columns)[:, :1]
        self._inverse = np.ones(1)  # 1 / eigenvalues of the kept components
        self._t2 = TailModel(size=128, horizon=4000, seed=seed)
        self._spe = TailModel(size=128, horizon=4000, seed=seed + 1)
        self._rows = 0
        self._since_refresh = 0
        self.kind = "spe"
        self.last_contributions: np.ndarray = np.zeros(columns)

    @property
    def learned(self) -> bool:
        return self._learning is None

    def update(self, row: np.ndarray, p_gate: float, may_learn: bool) -> float:
        """Tail probability of `row` (1.0 while learning or normal); learns it if allowed."""
        self._rows += 1
        if self._learning is not None:
            if may_learn:
                self._learn_initial(row)
            return 1.0
        z = (row - self._mean) / self._std
        scores = self._components.T @ z
        t2 = float(scores * scores @ self._inverse)
        residual = z - self._components @ scores
        spe = float(residual @ residual)
        p_t2, p_spe = self._t2.upper(t2), self._spe.upper(spe)
        if p_spe <= p_t2:
            p, self.kind = min(1.0, 2.0 * p_spe), "spe"
            contributions = residual * residual
        else:
            p, self.kind = min(1.0, 2.0 * p_t2), "t2"
            contributions = np.maximum(z * (self._components @ (scores * self._inverse)), 0.0)
        self.last_contributions = contributions
        if may_learn and p > p_gate:
            self._t2.add(t2)
            self._spe.add(spe)
            self._adapt(row)
        return p

    def contributors(self, members: list[str]) -> list[dict[str, Any]]:
        """The sensors behind the last judgement, largest share first."""
        total = float(self.last_contributions.sum())
        if total <= 0.0:
            return []
        order = np.argsort(-self.last_contributions)[:_TOP_CONTRIBUTORS]
        return [{"sensor_id": members[i], "share": round(float(self.last_contributions[i]) / total, 3)}
                for i in order if self.last_contributions[i] > 0.0]

    def _learn_initial(self, row: np.ndarray) -> None:
        learning = self._learning
        assert learning is not None
        learning.append(row)
        half = self._learning_rows // 2
        if len(learning) == half:
            self._fit(np.array(learning))
        elif len(learning) > half:
            z = (row - self._mean) / self._std
            scores = self._components.T @ z
            residual = z - self._components @ scores
            self._t2.add(float(scores * scores @ self._inverse))
            self._spe.add(float(residual @ residual))
        if len(learning) >= self._learning_rows:
            self._fit(np.array(learning))
            self._learning = None

    def _fit(self, rows: np.ndarray) -> None:
        self._mean = rows.mean(axis=0)
        self._var = rows.var(axis=0)
        self._floor_std()
        z = (rows - self._mean) / self._std
        self._corr = (z.T @ z) / len(rows)
        self._eigen()

    def _adapt(self, row: np.ndarray) -> None:
        alpha = self._alpha
        delta = row - self._mean
        self._mean += alpha * delta
        self._var += alpha * (delta * delta - self._var)
        z = delta / self._std
        self._corr += alpha * (np.outer(z, z) - self._corr)
        self._since_refresh += 1
        if self._since_refresh >= _REFRESH_ROWS:
            self._floor_std()
            self._eigen()

    def _floor_std(self) -> None:
        floor = _MIN_STD_FRACTION * (np.abs(self._mean) + 1.0)
        self._std = np.sqrt(np.maximum(self._var, floor * floor))

    def _eigen(self) -> None:
        values, vectors = np.linalg.eigh(self._corr)
        values, vectors = values[::-1], vectors[:, ::-1]
        values = np.maximum(values, 1e-9 * max(float(values[0]), 1e-12))
        share = np.cumsum(values) / values.sum()
        kept = int(np.searchsorted(share, self._explained) + 1)
        kept = min(kept, self.columns - 1) if self.columns > 1 else 1
        self._components = vectors[:, :kept]
        self._inverse = 1.0 / values[:kept]
        self._since_refresh = 0

    # -- snapshots ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"columns": self.columns, "rows": self._rows,
                "learning": None if self._learning is None else np.array(self._learning).tolist(),
                "mean": self._mean.tolist(), "var": self._var.tolist(), "corr": self._corr.tolist(),
                "t2": self._t2.state(), "spe": self._spe.state()}

    def load(self, state: dict[str, Any]) -> None:
        if int(state["columns"]) != self.columns:
            raise ValueError("asset model has a different number of sensors")
        learning = state["learning"]
        self._learning = None if learning is None else [np.array(r, dtype=float) for r in learning]
        self._rows = int(state["rows"])
        mean, var = np.array(state["mean"], dtype=float), np.array(state["var"], dtype=float)
        corr = np.array(state["corr"], dtype=float)
        if mean.shape != (self.columns,) or var.shape != mean.shape or \
                corr.shape != (self.columns, self.columns) or not np.all(np.isfinite(corr)):
            raise ValueError("asset model arrays malformed")
        self._mean, self._var, self._corr = mean, var, corr
        self._t2.load(state["t2"])
        self._spe.load(state["spe"])
        self._floor_std()
        self._eigen()
