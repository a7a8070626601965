"""How the pipeline runs, apart from its models: live HTTP sources (:class:`HttpConfig`), the
incremental ingest (:class:`IngestConfig`), the data validation gate's thresholds
(:class:`ValidationConfig`), the Prefect schedules and concurrency limit
(:class:`OrchestrationConfig`), where per-series work runs (:class:`ParallelConfig`) and the
read API (:class:`ServeConfig`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator


class HttpConfig(BaseModel):
    """How live HTTP sources behave: timeouts, retries with back-off, politeness."""

    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, description="tries per request, the first included")
    backoff_initial_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    rate_limit_per_s: float = Field(default=2.0, gt=0, description="requests per second per host")
    user_agent: str = "forecast-pipeline/0.1 (+https://github.com/forecast-pipeline)"
    max_response_bytes: int = Field(default=50_000_000, ge=1)


class IngestConfig(BaseModel):
    """Incremental ingest: how far back a nightly run looks again for late revisions."""

    revision_lookback_days: int = Field(
        default=3, ge=0, description="days before the watermark fetched again (late revisions)"
    )
    max_file_bytes: int = Field(default=200_000_000, ge=1, description="larger files are refused")


class ValidationConfig(BaseModel):
    """Thresholds of the warning-level checks, of the absurd changes and of the revisions (the
    other critical checks have no knobs)."""

    max_staleness_days: int = Field(default=5, ge=0, description="newest date vs forecast date")
    max_gap_days: int = Field(default=5, ge=1, description="longest allowed hole between rows")
    jump_zscore: float = Field(default=8.0, gt=0, description="day-over-day change, in std devs")
    absurd_jump_robust_z: float = Field(
        default=50.0,
        gt=0,
        description="critical: a change (log change of close, change of temp_mean) of more "
        "robust std devs (1.4826 * MAD) of the series' own changes is refused",
    )
    absurd_jump_factor: float = Field(
        default=100.0,
        gt=1,
        description="critical: a close more than this many times the previous one, or less "
        "than 1/this of it, is refused (prices only)",
    )
    max_revision_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="critical: a batch revising (changing already curated values of) more than "
        "this share of the key's curated rows in the history the gate reads (the last 400 days "
        "before the forecast date, reaching back to the batch's first date) is refused; smaller "
        "revisions are applied and recorded",
    )
    revision_rows_always_allowed: int = Field(
        default=5,
        ge=0,
        description="revisions of at most this many rows per key are never refused, whatever the "
        "share (a short history's correction of a few days)",
    )


class OrchestrationConfig(BaseModel):
    """How the deployments run: schedules (``forecast-pipeline deploy`` puts them in
    deploy/prefect.yaml) and the global concurrency limit every writing run holds."""

    nightly_cron: str = Field(default="30 6 * * 2-6", description="nightly run (cron)")
    retrain_cron: str = Field(default="0 4 * * 0", description="periodic full retraining (cron)")
    timezone: str = Field(default="Europe/London", description="IANA zone of both schedules")
    work_pool: str = Field(default="forecast-pool", description="Prefect work pool of the runs")
    concurrency_limit: str = Field(
        default="forecast-pipeline",
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefect global concurrency limit (1 slot) held by nightly, retrain and "
        "backfill runs, so two runs never write the same partitions or rows at once",
    )
    wait_hours: float = Field(
        default=12, gt=0, description="how long a run waits for that slot before failing"
    )
    slot_check_seconds: float = Field(
        default=10,
        gt=0,
        description="how often a waiting run looks whether the slot's holder is still alive; "
        "a slot whose holder died is freed after two looks",
    )

    @field_validator("nightly_cron", "retrain_cron")
    @classmethod
    def _five_fields(cls, v: str) -> str:
        if len(v.split()) != 5:
            raise ValueError(f"a cron needs 5 fields (minute hour day month weekday), got {v!r}")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v


class ParallelConfig(BaseModel):
    """Where a night's per-series work runs: every baseline's backtest and tonight's baseline
    forecasts (the linear model's fits, statsforecast's AutoETS and AutoARIMA). ``local``: in
    the forecast stage's own process (the default). ``dask``: on Dask, ``series_per_task``
    series per Prefect task run, through prefect-dask's task runner: on the cluster at
    ``dask_address`` (its workers must reach the data folder), else on a local cluster of
    ``workers`` processes started for the stage (``pip install 'forecast-pipeline[dask]'``).
    The global LSTM trains once, in the stage's process. The results are the same either way:
    a series' baselines read that series only."""

    runner: Literal["local", "dask"] = Field(
        default="local", description="local: in the stage's process; dask: on a Dask cluster"
    )
    workers: int = Field(default=2, ge=1, le=256, description="processes of a local cluster")
    dask_address: str | None = Field(
        default=None, description="scheduler of an existing cluster (tcp://host:8786)"
    )
    series_per_task: int = Field(default=50, ge=1, description="series per task run")


class ServeConfig(BaseModel):
    """``forecast-pipeline serve``, the read API over the published forecasts
    (:mod:`pipeline_lib.api`): where it listens, which database URL it reads with, and the URLs
    browsers use to reach it and the reports folder (:func:`pipeline_lib.api.links.report_link`
    maps a report file to its URL under ``reports_url``)."""

    host: str = Field(default="127.0.0.1", min_length=1, description="address to listen on")
    port: int = Field(default=8000, ge=1, le=65535, description="port to listen on")
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL the API reads with, e.g. a login of the read-only BI role; "
        "default the pipeline's own database (database_url). A secret, like database_url",
    )
    public_url: str | None = Field(
        default=None,
        description="the URL browsers reach this server at (behind a proxy, or when host is "
        "0.0.0.0); default http://{host}:{port}",
    )
    reports_url: str | None = Field(
        default=None,
        description="the URL the reports folder is reachable at from a browser, e.g. an "
        "object-storage bucket's https URL; default {public_url}/reports (served by the API)",
    )

    @field_validator("public_url", "reports_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        from urllib.parse import urlsplit

        if v is None:
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("must be an http:// or https:// URL without a query")
        return v.rstrip("/")

    @property
    def public_base(self) -> str:
        """``public_url``, or ``http://{host}:{port}`` (an IPv6 host in brackets)."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def reports_base(self) -> str:
        """``reports_url``, or ``{public_url}/reports``."""
        return self.reports_url or f"{self.public_base}/reports"
