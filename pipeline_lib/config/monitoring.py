"""Watching the models once they run: the drift and decay thresholds (:class:`DriftConfig`,
with :class:`DriftTableOptions`, the keyword arguments it gives ``pipeline_lib.monitoring.drift``)
and the policy by which drift and decay flags bring the full retraining forward
(:class:`RetrainPolicyConfig`, ``DecayMetric``).
"""

from __future__ import annotations

from typing import Literal, TypedDict

from pydantic import BaseModel, Field, field_validator


class DriftTableOptions(TypedDict):
    """The keyword arguments of ``pipeline_lib.monitoring.drift.drift_table`` a DriftConfig
    gives."""

    psi_bins: int
    psi_threshold: float
    ks_pvalue_threshold: float
    wasserstein_threshold: float
    mean_shift_threshold: float
    std_ratio_threshold: float


class DriftConfig(BaseModel):
    """Drift thresholds: input drift (pipeline_lib.monitoring.drift), prediction drift and
    performance decay (pipeline_lib.monitoring.decay). Every metric row carries its threshold and
    flag.

    At ~63 recent business days against ~3 years of reference, the input-drift defaults flag
    1-4% of stationary, serially independent series (returns) and flag a 1-std mean shift
    every time; persistent features and volatility clustering are flagged far more often
    (their windows hold fewer independent values). ``python bench/drift_false_alarms.py``
    prints the rates.
    """

    # ~63 business days against 5 bins: on stationary data PSI > 0.2 about 2% of the time
    # (10 bins and 30 days flagged most stable features; see pipeline_lib.monitoring.drift).
    recent_days: int = Field(default=90, ge=5, description="size of the recent window, in days")
    psi_bins: int = Field(default=5, ge=2)
    psi_threshold: float = 0.2
    ks_pvalue_threshold: float = 0.01
    wasserstein_threshold: float = Field(
        default=0.4,
        gt=0,
        description="wasserstein_std: Wasserstein distance over the reference std; a pure mean "
        "shift of d std gives d",
    )
    mean_shift_threshold: float = Field(
        default=0.5,
        gt=0,
        description="|mean_recent - mean_ref| / std_ref above this is drift",
    )
    std_ratio_threshold: float = Field(
        default=1.5,
        gt=1,
        description="std_recent / std_ref outside [1/t, t] is drift",
    )
    prediction_shift_threshold: float = Field(
        default=3.0,
        gt=0,
        description="prediction drift: tonight's forecast (mean over horizons) more than this "
        "many std of the reference nights' forecasts from their mean (one night is one value)",
    )
    # A calibrated naive forecast of a random walk (bench/drift_false_alarms.py): with 90 days
    # coverage_gap flags ~19% of the nights (all horizons), with 180 days ~6%; mase_ratio ~17-21%
    # either way (~13% against a 150-origin backtest): nearby nights' errors overlap. The
    # retraining policy counts a flag once (RetrainPolicyConfig).
    decay_window_days: int = Field(
        default=180, ge=1, description="performance decay: target dates in the last N days"
    )
    # at 30 the binomial noise of an 80% coverage (0.073) is below the 0.10 threshold
    min_realised: int = Field(
        default=30,
        ge=1,
        description="performance decay: fewer realised forecasts in a series (or horizon) "
        "and no rows for it",
    )
    mase_ratio_threshold: float = Field(
        default=1.2, gt=0, description="live MASE / backtest MASE above this is decay"
    )
    coverage_gap_threshold: float = Field(
        default=0.10,
        gt=0,
        le=1,
        description="|live interval coverage - nominal level| above this is decay",
    )

    def table_options(self) -> DriftTableOptions:
        """The keyword arguments of ``pipeline_lib.monitoring.drift.drift_table`` these settings
        give."""
        return {
            "psi_bins": self.psi_bins,
            "psi_threshold": self.psi_threshold,
            "ks_pvalue_threshold": self.ks_pvalue_threshold,
            "wasserstein_threshold": self.wasserstein_threshold,
            "mean_shift_threshold": self.mean_shift_threshold,
            "std_ratio_threshold": self.std_ratio_threshold,
        }


DecayMetric = Literal["mase_ratio", "coverage_gap"]


def _all_decay_metrics() -> list[DecayMetric]:
    return ["mase_ratio", "coverage_gap"]


class RetrainPolicyConfig(BaseModel):
    """When drift and decay flags bring the full retraining forward
    (pipeline_lib.monitoring.policy).

    Before training, the nightly checks input drift (the current model's training window
    against the recent window) and the decay of the forecasts published before. A watched
    (series, feature) counts as drifted when at least ``min_agreeing_metrics`` of its five
    flagged metrics (psi, ks_pvalue, wasserstein_std, mean_shift, std_ratio) agree; a series
    counts as decayed when its all-horizons ``forecast_error`` row flags one of
    ``decay_metrics``. The run trains in full when the drifted pairs reach
    ``input_drift_count`` or the decayed series reach ``decay_count`` (in a panel of many series,
    at least ``input_drift_share`` of the watched pairs and ``decay_share`` of the series checked
    tonight, where that is more), unless the last full training is younger than
    ``cooldown_days``; otherwise it fine-tunes. The new model still
    has to beat the champion on the backtest.

    Only the log return is watched by default: on the bundled data (2015, one night a week)
    the price level ``y`` drifts on every night (a trending price is never stationary) and the
    weather on 83-96% of them (the season against three years), while the log return's
    metrics agreed only on WTI's 2015 collapse. ``python bench/drift_false_alarms.py`` prints
    the policy's false alarms and detection.
    """

    enabled: bool = Field(
        default=True,
        description="drift and decay flags can bring a full retraining forward; off: only the "
        "cadence and the other reasons (no model, settings changed, --retrain) train in full",
    )
    watch_features: list[str] = Field(
        default_factory=lambda: ["log_return"],
        description="input-drift features whose flags count (y, or a past feature)",
    )
    min_agreeing_metrics: int = Field(
        default=3,
        ge=1,
        le=5,
        description="flagged metrics (of psi, ks_pvalue, wasserstein_std, mean_shift, "
        "std_ratio) that make a (series, feature) drifted",
    )
    input_drift_count: int = Field(
        default=1, ge=0, description="drifted (series, feature) pairs that trigger; 0: never"
    )
    input_drift_share: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="and at least this share of the watched (series, feature) pairs checked "
        "tonight: a fixed count is met by chance in a large panel (7% of GARCH(1,1) series "
        "are counted as drifted, bench/drift_false_alarms.py); up to 10 series it needs 1",
    )
    decay_metrics: list[DecayMetric] = Field(
        default_factory=_all_decay_metrics,
        description="decay flags (all horizons of a series) that count",
    )
    decay_count: int = Field(default=2, ge=0, description="decayed series that trigger; 0: never")
    decay_share: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="and at least this share of the series whose decay was checked tonight "
        "(a calibrated naive forecast flags decay on 19% of series-nights); up to 8 series it "
        "needs decay_count",
    )
    cooldown_days: int = Field(
        default=7,
        ge=0,
        description="no drift-triggered full training within this many days of the last one",
    )

    @field_validator("watch_features")
    @classmethod
    def _known_features(cls, v: list[str]) -> list[str]:
        from pipeline_lib.schema import PAST_FEATURES, Y

        unknown = sorted(set(v) - {Y, *PAST_FEATURES})
        if unknown:
            raise ValueError(f"unknown features {unknown}; known: {[Y, *PAST_FEATURES]}")
        return v
