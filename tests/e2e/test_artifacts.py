"""The artifact tasks create real Prefect artifacts: read back from the API of the test harness.

A tiny real night (two random walks, an LSTM of 4 units trained for 2 epochs, the baselines)
gives the forecasts, evaluation and drift the forecast flow would pass.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from uuid import UUID

import pandas as pd
import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.runtime import flow_run

from pipeline_lib import schema
from pipeline_lib.api.links import report_link
from pipeline_lib.config import SeriesConfig, Settings, load_settings
from pipeline_lib.forecasting import champion, nightly_forecasts, retrain, situation
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.monitoring import policy
from pipeline_lib.monitoring.monitor import drift_metrics
from pipeline_lib.running.night import Night
from pipeline_lib.validation.report import (
    ExpectationFailure,
    ValidationFailed,
    ValidationReport,
    raise_if_failed,
)
from tasks import artifacts as artifact_tasks
from tasks.artifacts import publish_forecast_artifacts, publish_validation_artifact

AS_OF = dt.date(2020, 12, 31)
FEATURES = random_walk_features(n_series=2, n_days=300, start=dt.date(2020, 1, 1))


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> dict:
    settings = load_settings(
        data_dir=str(tmp_path_factory.mktemp("artifacts") / "data"),
        horizon=3,
        series=[SeriesConfig(id="S0"), SeriesConfig(id="S1")],
        model={"lookback": 10, "hidden_size": 4, "embedding_dim": 2},
        training={"max_epochs": 2, "train_window_days": 400},
        backtest={"last_n": 5, "step": 2, "baselines": ["naive", "seasonal_naive"]},
        drift={"recent_days": 60},
    )
    train_start = AS_OF - dt.timedelta(days=settings.training.train_window_days - 1)
    drift = drift_metrics(FEATURES, train_start, AS_OF, settings.drift)
    # every feature watched and one flag enough, so the decision's artifact lists flags
    watch_all = settings.retrain_policy.model_copy(
        update={"watch_features": [schema.Y, *schema.PAST_FEATURES], "min_agreeing_metrics": 1}
    )
    verdict = policy.assess(drift, watch_all)
    candidate, decision = retrain.train_or_reuse(settings, FEATURES, AS_OF, drift=verdict)
    evaluation = champion.evaluate(settings, FEATURES, AS_OF, candidate, decision)
    forecasts = nightly_forecasts.published_forecasts(settings, evaluation, FEATURES, AS_OF)
    return dict(
        settings=settings, evaluation=evaluation, forecasts=forecasts, drift=drift,
        decision=decision,
    )  # fmt: skip


def _artifacts(flow_run_id: str) -> dict[str, str]:
    """key -> data of the artifacts of one flow run."""
    run_filter = ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)])
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=run_filter))
    return {a.key: a.data for a in found}


@flow
def forecast_artifacts_flow(
    settings: Settings,
    forecasts: pd.DataFrame,
    decision: retrain.TrainingDecision,
    evaluation: champion.Evaluation,
    drift: pd.DataFrame,
) -> tuple[str, str | None]:
    run_id = str(flow_run.get_id())
    models = situation.situation(settings, FEATURES, AS_OF)
    night = Night(settings, AS_OF, run_id, FEATURES, models)
    plot = publish_forecast_artifacts(night, forecasts, decision, evaluation, drift)
    return run_id, plot


def test_keys_follow_prefects_rule() -> None:
    keys = [v for k, v in vars(artifact_tasks).items() if k.endswith("_KEY")]
    assert len(keys) == 7 and len(set(keys)) == 7
    assert all(re.fullmatch(r"[a-z0-9-]+", k) for k in keys)


def test_forecast_artifacts_are_created(prefect_api: None, night: dict) -> None:
    forecasts, evaluation = night["forecasts"], night["evaluation"]
    decision = night["decision"]
    run_id, plot = forecast_artifacts_flow(
        night["settings"], forecasts, decision, evaluation, night["drift"]
    )
    found = _artifacts(run_id)
    assert set(found) == {
        "forecasts", "training-decision", "backtest-metrics", "drift-flags", "forecast-plot"
    }  # fmt: skip

    # the plot: saved in the data folder, shown in the run page from where a browser reaches
    # the reports folder (the read API's /reports by default)
    path = Path(plot)
    assert path.read_bytes().startswith(b"\x89PNG")
    assert path.parent == Path(night["settings"].data_dir, "reports", "plots", "2020-12-31")
    url = report_link(night["settings"], plot)
    assert url.startswith("http://127.0.0.1:8000/reports/plots/2020-12-31/forecast-")
    assert found["forecast-plot"].startswith(f"![forecast plot as of 2020-12-31]({url})")

    # forecasts: one row per series with its model and its last-horizon forecast
    table = found["forecasts"]
    for row in forecasts[forecasts["horizon"] == 3].itertuples():
        line = next(x for x in table.splitlines() if x.startswith(f"| {row.series_id} |"))
        assert row.model in line.split(" | ")[1].split(" / ")  # the series' models, by horizon
        assert f"{row.yhat:,.2f} [{row.yhat_lower:,.2f}, {row.yhat_upper:,.2f}] |" in line
    assert f"[Plot of recent actuals and the forecasts (PNG)]({url})" in table

    # backtest: the champion of the night, and per series and horizon bucket what was
    # published, by which rule, with the MASE of its members on that bucket
    selection = evaluation.selection
    assert f"| champion | {selection.champion} |" in found["backtest-metrics"]
    for sid, choices in selection.series_choices().items():
        for c in choices:
            mase = ", ".join(f"{m} {c.evidence['mase'][m]:.3f}" for m in c.weights)
            head = f"| {sid} | {c.first}-{c.last} | {c.label} | {c.rule} |"
            line = next(x for x in found["backtest-metrics"].splitlines() if x.startswith(head))
            assert f"| {mase} |" in line

    # the training decision: action, trigger, reason and the flags the policy counted
    text = found["training-decision"]
    assert text.startswith("**Training: full** (trigger `no_model`): no model trained on data")
    assert decision.drift is not None and decision.drift.drifted
    assert f"**Retraining policy** calls for a full training: {decision.drift.reason}" in text
    for flag in decision.drift.drifted:
        assert f"| input_drift | {flag.series_id} | {flag.feature} |" in text

    # drift: the alerts counted (the KS test once, by its p-value)
    tested = night["drift"][night["drift"]["metric"] != "ks_statistic"]
    alerts = int(tested["is_drift"].sum())
    assert alerts > 0 and f"**: {alerts} alerts on " in found["drift-flags"]


def _report(name: str, failures: list[ExpectationFailure]) -> ValidationReport:
    ok = not failures
    return ValidationReport("prices", name, "2020-12-31", 3, ok, 10, 10 - len(failures), failures)


@task
def validate(reports: list[ValidationReport]) -> list[ValidationReport]:
    raise_if_failed(reports, {r.key: f"quarantine/{r.batch_name}" for r in reports})
    return reports


@flow
def ingest_like_flow(reports: list[ValidationReport]) -> str:
    """Publishes the validation summary for a run that passes and one that fails, as the
    ingest flow can: the failed run's reports travel on its ValidationFailed."""
    try:
        checked = validate(reports)
    except ValidationFailed as exc:
        publish_validation_artifact(exc.reports, AS_OF, exc.quarantine_paths)
        raise
    publish_validation_artifact(checked, AS_OF)
    return str(flow_run.get_id())


def test_validation_artifact_is_created(prefect_api: None) -> None:
    run_id = ingest_like_flow([_report("prices-S0", [])])
    text = _artifacts(run_id)["validation-summary"]
    assert "| prices/prices-S0 | - | 3 | passed | 10/10 | - | - |" in text

    failure = ExpectationFailure(
        "close_positive", "expect_column_values_to_be_between", ["close"], "critical", "ranges"
    )
    state = ingest_like_flow([_report("prices-S1", [failure])], return_state=True)
    assert state.is_failed()
    found = _artifacts(str(state.state_details.flow_run_id))
    text = found["validation-summary"]
    assert "| prices/prices-S1 | - | 3 | **FAILED** | 9/10 | close_positive | - |" in text
    assert "prices/prices-S1 quarantined in quarantine/prices-S1" in text
