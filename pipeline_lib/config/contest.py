"""How the models are scored and chosen: the rolling-origin backtest and its baselines
(:class:`BacktestConfig`, ``BaselineName``, ``STATISTICAL_MIN_ROWS``), the selection of what is
published (:class:`SelectionConfig`, ``RuleName``) and the hyper-parameter search
(:class:`TuningConfig`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

BaselineName = Literal["naive", "seasonal_naive", "linear", "ets", "arima"]


def _all_baselines() -> list[BaselineName]:
    return ["naive", "seasonal_naive", "linear", "ets", "arima"]


# the selection rules (pipeline_lib.forecasting.selection reads its RULES from here)
RuleName = Literal[
    "dm_set", "best", "dm", "margin", "combination", "dm_combination", "dm_mean", "margin_dm_set"
]
STATISTICAL_MIN_ROWS = 60  # the fewest rows a statistical baseline is fitted on
STATISTICAL_REFIT_ROWS = 60  # rows between a statistical baseline's fit points, by default
STATISTICAL_SEARCH_EVERY = 4  # fit points per model search of a statistical baseline, by default


class BacktestConfig(BaseModel):
    """The nightly rolling-origin backtest that ranks the models.

    Its origins are the last ``last_n`` forecast dates, ``step`` rows apart, whose ``horizon``
    targets are all observed by the run date. Models are trained only on targets dated on or
    before the first origin, so every model is scored out of sample on the same windows.
    """

    # 40 origins 2 rows apart: about four months of evidence. 20 consecutive origins (a month
    # of heavily overlapping windows) picked models that then lost to naive out of sample
    # (bench/accuracy.py, figures in the README).
    last_n: int = Field(default=40, ge=1, description="forecast dates (origins) per series")
    step: int = Field(default=2, ge=1, description="rows between consecutive origins")
    mase_season: int = Field(default=1, ge=1, description="MASE scale: 1 = naive, 5 = weekly")
    baselines: list[BaselineName] = Field(
        default_factory=_all_baselines,
        description="baselines scored, and published where the selection picks them; ets and "
        "arima are statsforecast's AutoETS and AutoARIMA",
    )
    # bench/statistical_window.py, electricity 2019-2020: 1000 rows were as accurate as every
    # row (MASE h=1 ETS 0.870 vs 0.877, ARIMA 0.817 vs 0.839) for 0.69x and 0.88x the CPU
    statistical_fit_rows: int = Field(
        default=1000,
        ge=0,
        description="rows ets and arima are fitted on: the newest before their fit point (0: "
        "every row since the series' first, a cost that grows with the history); at least 60",
    )
    # bench/statistical_window.py --refit-every 20,60,120, electricity 2019-2020: MASE h=1 ETS
    # 0.870 / 0.877 / 0.879, ARIMA 0.833 / 0.830 / 0.824 (h=1-14 within 0.7%); the stocks of
    # 2015 within noise either way; CPU 303 / 111 / 59 s. 60 rows: a third of the fits
    statistical_refit_rows: int = Field(
        default=STATISTICAL_REFIT_ROWS,
        ge=1,
        description="rows between the fit points of ets and arima: each series' model is "
        "refitted (its form searched, its parameters estimated) when its history has grown "
        "by this many rows, staggered across the series; between fits its states follow "
        "every new row (statsforecast's forward)",
    )
    # bench/statistical_window.py --search-every 1,2,4,8, electricity 2019-2020 (51 nights,
    # refit every 60): MASE h=1 ETS 0.880 / 0.880 / 0.880 / 0.881, ARIMA 0.832 / 0.829 / 0.820
    # / 0.816, h=1-14 within 0.5%; CPU of fits and forecasts ETS 19.2 / 11.9 / 9.0 / 6.9 s,
    # ARIMA 24.1 / 15.0 / 12.1 / 9.6 s; the stocks of 2015 within noise. 4: about a year of
    # business days between searches
    statistical_search_every: int = Field(
        default=STATISTICAL_SEARCH_EVERY,
        ge=1,
        description="fit points of ets and arima per model search: at one fit point in this "
        "many (staggered like the fit points) AutoETS and AutoARIMA search their form (ETS "
        "components, ARIMA order); the others re-estimate the parameters of that form on their "
        "own rows, at about a tenth of the cost. 1: every fit point searches",
    )
    # bench/statistical_window.py, electricity 2019-2020 (histories of 1,097-1,797 rows): every
    # row MASE h=1 0.601, h=1-14 1.293; 1456 rows 0.602 / 1.298; 728 0.635 / 1.332; LEAR's
    # mean of 56, 84, 1092 and 1456 rows 0.697 / 1.486. More rows help; 1820 bounds the cost
    # on long histories and keeps every row of the bundled ones
    linear_fit_rows: list[int] = Field(
        default_factory=lambda: [1820],
        min_length=1,
        description="the linear model's calibration windows in rows, newest first: each fits "
        "its ridges on that many rows before the origin (0: every row since the series' "
        "first); several are averaged (LEAR's ensemble of windows); each 0 or at least 60",
    )
    keep_days: int = Field(
        default=31,
        ge=0,
        description="days of nightly backtests kept in backtest_results before the night's "
        "date (each night writes every origin, horizon and model; 0: keep all)",
    )
    series_per_chunk: int = Field(
        default=200,
        ge=1,
        description="series whose baselines are run and every model scored at once: the "
        "backtest holds one chunk's forecasts and their scoring, not every series' (memory)",
    )
    reference: BaselineName = Field(
        default="naive",
        description="the model the dm and margin selection rules fall back to",
    )
    min_improvement: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="margin rule: relative MASE gain over the reference a model needs",
    )

    @field_validator("statistical_fit_rows")
    @classmethod
    def _enough_rows(cls, rows: int) -> int:
        if 0 < rows < STATISTICAL_MIN_ROWS:
            raise ValueError(f"must be 0 (every row) or at least {STATISTICAL_MIN_ROWS}")
        return rows

    @field_validator("linear_fit_rows")
    @classmethod
    def _enough_linear_rows(cls, windows: list[int]) -> list[int]:
        short = [w for w in windows if w < 0 or 0 < w < STATISTICAL_MIN_ROWS]
        if short:
            raise ValueError(f"{short}: each must be 0 (every row) or at least 60")
        return sorted(set(windows))

    @model_validator(mode="after")
    def _reference_scored(self) -> BacktestConfig:
        if self.reference not in self.baselines:
            raise ValueError(f"backtest.reference {self.reference!r} must be in baselines")
        return self


class SelectionConfig(BaseModel):
    """What is published per series and horizon bucket (see pipeline_lib.forecasting.selection).

    Chosen by the walk-forward figures of bench/accuracy.py on the bundled stocks and on the
    six electricity zones with their covariates (README, Benchmarks): per bucket, the
    reference (naive) unless a model's backtest MASE beats it by ``backtest.min_improvement``
    (10%) and a Diebold-Mariano test finds naive's loss above the best model's at
    ``reference_alpha`` (0.2); then the models a Diebold-Mariano test at ``alpha`` 0.05 cannot
    tell from the best one and within ``tolerance`` (10%) of its MASE, combined
    (``margin_dm_set``), on the newest ``record_windows`` windows of tonight's backtest and of
    the evaluation record of earlier nights. Over the four scopes measured (two data sets, h=1
    and h=1-14, 2026-12-07) it was on average 1.4% better than the best single model in
    hindsight, no worse than the best statistical baseline on 18 of 20 series and scopes, and
    never behind the best single model; on tonight's 40 windows alone: 0.9% better on
    average, 17, 0.4% behind (over h=1-14 on the stocks, where naive is best).
    """

    rule: RuleName = Field(
        default="margin_dm_set", description="how the backtest evidence picks what is published"
    )
    bucket_ends: list[int] = Field(
        default_factory=lambda: [1, 5],
        description="last horizon of each bucket but the last: [1, 5] gives h=1, 2-5, 6-H",
    )
    alpha: float = Field(
        default=0.05, gt=0, lt=1, description="level of the one-sided Diebold-Mariano test"
    )
    max_members: int = Field(default=3, ge=1, description="most models in a published combination")
    tolerance: float = Field(
        default=0.1,
        ge=0,
        description="dm_set and margin_dm_set: a member's backtest MASE on the bucket is at most "
        "(1 + tolerance) times the best one's, beside the test (0: any model the test ties)",
    )
    reference_alpha: float = Field(
        default=0.2,
        ge=0,
        lt=1,
        description="margin and margin_dm_set: the reference is also kept unless a "
        "Diebold-Mariano test finds its loss above the best model's at this level (0: off; "
        "safer on series no model beats, costly on spiky prices where the test is weak: "
        "bench/rules.py scores other levels)",
    )
    record_windows: int = Field(
        default=100,
        ge=0,
        description="windows per series and bucket the rule reads: tonight's backtest and, "
        "before it, the evaluation record of earlier nights (each window's losses as the "
        "night that first scored it saw them; pipeline_lib.forecasting.evaluation_record). 0: "
        "tonight's backtest alone",
    )


class TuningConfig(BaseModel):
    """Hyper-parameter search (Optuna TPE) on the backtest; see pipeline_lib.forecasting.tuning."""

    n_trials: int = Field(default=20, ge=1)
    seed: int = 0
    use_best: bool = Field(
        default=True, description="train with the best configuration found, once there is one"
    )
    lookback: list[int] = Field(default_factory=lambda: [30, 60, 90])
    hidden_size: list[int] = Field(default_factory=lambda: [16, 32, 64])
    num_layers: list[int] = Field(default_factory=lambda: [1, 2])
    dropout: tuple[float, float] = (0.0, 0.3)
    learning_rate: tuple[float, float] = (1e-3, 1e-2)
    batch_size: list[int] = Field(default_factory=lambda: [64, 128, 256])
