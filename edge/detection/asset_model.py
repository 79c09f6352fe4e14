"""AssetModel: the joint normal behaviour of one asset's sensors (PCA with SPE).

Catches faults where each sensor alone looks normal but their relation breaks (a pump drawing
more current for the same flow and pressure). Rows (see `asset_rows`) are standardised by each
sensor's mean and deviation; the principal components of their correlation with an eigenvalue of
at least one (Kaiser's rule: more than one sensor's worth of variance, with hysteresis across
refits, `kept_modes`) carry the asset's shared modes (load, duty). A row is judged by its squared
residual off those modes, SPE (Q): large when the sensors no longer move together as they did.
A broken relation lasts, so the SPE, each row's taken as a multiple of the SPE the model
expects (the variance its kept modes leave out, so refits of the model do not disturb its
history), is averaged over about `SPE_SPAN` rows (EWMA), scored by a `TailModel` of its own
history and turned into a rate per day by the asset's row rate (one independent judgement per
`SPE_SPAN` rows), like a sensor's judgement. Rows a member sensor's own alert explains are left
out of the average. Unusual levels of single sensors (Hotelling's T² along the modes) are left
to the sensor models, which judge levels against each sensor's own history.

Contributions name where to look: for each sensor, how far it is from what the other sensors
predict of it (a leave-one-out regression through the precision matrix, the similarity-based
estimate of each sensor from the others), in units of its usual error, averaged like the SPE.
With two sensors the SPE alone cannot tell which one broke the relation; this can.
An asset whose sensors share no mode (the largest eigenvalue of their correlation below
`MIN_SHARED_MODE`) has no relation to break, and its model judges nothing.

Learning: the first half of `learning_rows` fits the model, the second half seeds the SPE tail
out of sample, then the model is refitted on all of them. Afterwards mean and covariance keep
learning (a running mean at first, then an EWMA over `horizon_rows`; standardisation, modes and
precision refreshed from them every 50 rows), except from rows the engine marks as alerting (the
asset model's alert or one of its sensors' alerts is open) and from rows that are not clearly
normal.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edge.detection.settings import AssetModelSettings
from edge.detection.tails import TailModel

_REFRESH_ROWS = 50
_MIN_STD_FRACTION = 1e-6  # a deviation floor relative to the level, for constant columns
_TOP_CONTRIBUTORS = 3
MIN_SHARED_MODE = 1.5
SPE_SPAN = 10
_SPE_ALPHA = 2.0 / (SPE_SPAN + 1)
_RIDGE = 1e-3  # keeps the precision matrix finite for (nearly) collinear sensors
_KAISER_HYSTERESIS = 0.15  # an eigenvalue must clear one by this much to add or drop a mode


class AssetModel:
    """The PCA model of one asset; `update` judges one row and learns it unless told not to."""

    kind: ClassVar[str] = "spe"
    trials_factor: ClassVar[float] = 1.0 / SPE_SPAN
    persist_rows: ClassVar[int] = SPE_SPAN // 2  # candidate rows before the averaged SPE counts as lasting

    __slots__ = (
        "_adapted",
        "_alpha",
        "_attribution_weight",
        "_components",
        "_cov",
        "_expected_spe",
        "_inv_std",
        "_kept_known",
        "_leading",
        "_learning",
        "_learning_rows",
        "_mean",
        "_precision",
        "_precision_diag",
        "_projections",
        "_recent_spe",
        "_since_refresh",
        "_spe",
        "_std",
        "columns",
        "last_contributions",
    )

    def __init__(self, columns: int, settings: AssetModelSettings, seed: int) -> None:
        self.columns = columns
        self._learning_rows = settings.learning_rows
        self._alpha = 1.0 / settings.horizon_rows
        self._learning: list[np.ndarray] | None = []
        self._mean: np.ndarray = np.zeros(columns)
        self._cov: np.ndarray = np.eye(columns)
        self._std: np.ndarray = np.ones(columns)
        self._precision: np.ndarray = np.eye(columns)
        self._precision_diag: np.ndarray = np.ones(columns)
        self._inv_std: np.ndarray = np.ones(columns)
        # [residual projector; precision] stacked: one product gives both per row.
        self._projections: np.ndarray = np.vstack([np.eye(columns), np.eye(columns)])
        self._attribution_weight: np.ndarray = np.full(columns, _SPE_ALPHA)
        self._recent_spe = 0.0
        self._components: np.ndarray = np.eye(columns)[:, :1]
        self._leading = 0.0
        self._spe = TailModel(size=128, horizon=4000, seed=seed)
        self._expected_spe = 1.0
        self._adapted = 0
        self._since_refresh = 0
        self._kept_known = False  # no modes chosen yet (the hysteresis has nothing to keep)
        self.last_contributions: np.ndarray = np.zeros(columns)

    @property
    def learned(self) -> bool:
        return self._learning is None

    @property
    def related(self) -> bool:
        """The sensors share a mode: there is a relation that can break."""
        return self._leading >= MIN_SHARED_MODE

    def update(self, row: np.ndarray, may_learn: bool, p_learn: float = 0.0,
               explained: bool = False) -> float:
        """Tail probability of `row`'s SPE (1.0 while learning or unrelated); learns the row if
        allowed and its probability is above `p_learn` (a suspect row does not teach).

        `explained`: a member sensor's own alert covers this row (a spike, say). Its SPE is
        left out of the average, or one reading would linger in it for tens of rows, long
        after the sensor's alert ended, and read as a broken relation."""
        if self._learning is not None:
            if may_learn:
                self._learn_initial(row)
            return 1.0
        if explained:
            return self._spe.upper(self._recent_spe) if self._leading >= MIN_SHARED_MODE else 1.0
        spe = self._judge(row)
        p = self._spe.upper(spe) if self._leading >= MIN_SHARED_MODE else 1.0
        if may_learn and p > p_learn:
            self._spe.add(spe)
            self._adapt(row)
        return p

    def _judge(self, row: np.ndarray) -> float:
        """The averaged SPE of `row` as a multiple of the expected, and its split by sensor."""
        z = (row - self._mean) * self._inv_std
        both = self._projections @ z
        columns = self.columns
        # The residual off the kept modes is R z (R = I - C Cᵀ, a projector), so its squared
        # length is z·Rz. A broken relation lasts: the SPE and the attribution are averaged
        # over about SPE_SPAN rows (one independent judgement per SPE_SPAN rows).
        # Each row's SPE is taken as a multiple of what the model expects before averaging,
        # so a refit that changes the expected SPE does not rescale the rows already averaged.
        self._recent_spe += _SPE_ALPHA * (float(z @ both[:columns]) / self._expected_spe
                                          - self._recent_spe)
        # Attribution: how far each sensor is from what the others predict of it (leave-one-out
        # regression through the precision matrix, q = P z), in units of its usual error.
        q = both[columns:]
        contributions = self.last_contributions
        contributions *= 1.0 - _SPE_ALPHA
        contributions += self._attribution_weight * (q * q)
        return self._recent_spe

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
            self._spe.add(self._judge(row))
        if len(learning) >= self._learning_rows:
            self._fit(np.array(learning))
            self._learning = None

    def _fit(self, rows: np.ndarray) -> None:
        self._mean = rows.mean(axis=0)
        centred = rows - self._mean
        self._cov = centred.T @ centred / len(rows)
        self._refresh()

    def _adapt(self, row: np.ndarray) -> None:
        self._adapted += 1
        alpha = max(self._alpha, 1.0 / (self._learning_rows + self._adapted))
        delta = row - self._mean
        step = alpha * delta
        self._mean += step
        cov = self._cov  # (1 - alpha) cov + alpha delta deltaᵀ, in place
        cov *= 1.0 - alpha
        cov += step[:, None] * delta
        self._since_refresh += 1
        if self._since_refresh >= _REFRESH_ROWS:
            self._refresh()

    def _refresh(self) -> None:
        """Standardisation, modes and precision from the current mean and covariance."""
        floor = _MIN_STD_FRACTION * (np.abs(self._mean) + 1.0)
        self._std = np.sqrt(np.maximum(np.diag(self._cov), floor * floor))
        corr = self._cov / np.outer(self._std, self._std)
        values, vectors = np.linalg.eigh(corr)
        values, vectors = values[::-1], vectors[:, ::-1]
        values = np.maximum(values, 1e-9 * max(float(values[0]), 1e-12))
        kept = kept_modes(values, self._components.shape[1] if self._kept_known else None)
        self._kept_known = True
        self._components = vectors[:, :kept]
        # The SPE expected of a normal row: the variance left off the kept modes. Scoring the
        # SPE as a multiple of it keeps its tail valid across refits of the model.
        self._expected_spe = max(float(values[kept:].sum()), 1e-9)
        self._leading = float(values[0])
        self._precision = np.linalg.inv(corr + _RIDGE * np.eye(self.columns))
        self._precision_diag = np.diag(self._precision).copy()
        self._inv_std = 1.0 / self._std
        projector = np.eye(self.columns) - self._components @ self._components.T
        self._projections = np.vstack([projector, self._precision])
        self._attribution_weight = _SPE_ALPHA / self._precision_diag
        self._since_refresh = 0

    # -- snapshots ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"columns": self.columns, "adapted": self._adapted,
                "learning": None if self._learning is None else np.array(self._learning).tolist(),
                "mean": self._mean.tolist(), "cov": self._cov.tolist(),
                "recent_spe": self._recent_spe, "spe_scaled": True,
                # None until the first fit chose the modes (before, it is a placeholder)
                "kept": self._components.shape[1] if self._kept_known else None,
                "recent": self.last_contributions.tolist(),
                "spe": self._spe.state()}

    def load(self, state: dict[str, Any]) -> None:
        if int(state["columns"]) != self.columns:
            raise ValueError("asset model has a different number of sensors")
        learning = state["learning"]
        mean, cov = np.array(state["mean"], dtype=float), np.array(state["cov"], dtype=float)
        recent = np.array(state["recent"], dtype=float)
        if mean.shape != (self.columns,) or recent.shape != mean.shape or \
                cov.shape != (self.columns, self.columns) or not np.all(np.isfinite(cov)):
            raise ValueError("asset model arrays malformed")
        self._learning = None if learning is None else [np.array(r, dtype=float) for r in learning]
        self._adapted = int(state["adapted"])
        self._mean, self._cov, self.last_contributions = mean, cov, recent
        # Fitted when saved? Before the half-way fit there are no modes (and snapshots of
        # earlier versions saved a placeholder `kept` then).
        if self._learning is None or len(self._learning) >= self._learning_rows // 2:
            kept = state.get("kept")
            if type(kept) is int and 1 <= kept < self.columns:
                self._components = np.eye(self.columns)[:, :kept]
                self._kept_known = True
            self._refresh()
        self._recent_spe = float(state["recent_spe"])
        if not state.get("spe_scaled"):  # saved before rows were scaled one by one
            self._recent_spe /= self._expected_spe
        self._spe.load(state["spe"])


def kept_modes(values: np.ndarray, previous: int | None) -> int:
    """How many modes (eigenvalues of the correlation, largest first) the model keeps.

    Kaiser's rule: a mode is shared when it carries more than one sensor's variance; with
    hysteresis against the `previous` count, so an eigenvalue hovering about one does not flip
    the model's shape (and what its SPE measures) back and forth with every refresh."""
    columns = len(values)
    kept = max(1, min(int(np.sum(values >= 1.0)), columns - 1))
    if previous is None:
        return kept
    if kept > previous and values[previous] < 1.0 + _KAISER_HYSTERESIS:
        return previous
    if kept < previous and values[previous - 1] >= 1.0 - _KAISER_HYSTERESIS:
        return previous
    return kept
