"""Each thing a new use case tripped over, pinned: the spec, not the churn example, decides."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mlops.paths import PACKAGE_ROOT
from mlops.settings import EnvironmentSettings, GateSettings, load_settings
from models.bundle import ModelBundle, Target
from models.encoding import FeatureEncoder
from pipelines.datagen.examples import generate_example
from pipelines.features.compute import compute_window_features
from pipelines.ports import ApprovalStatus, ModelCandidate
from pipelines.serving.app import Variant, VariantRouter, create_app
from pipelines.serving.handler import InferenceHandler
from pipelines.training.dataset import labelled_rows
from pipelines.usecase import UseCase, UseCaseError, load_usecase
from pipelines.validation.suite import expectations_for

USECASES = PACKAGE_ROOT / "usecases"


def _spec(name: str) -> UseCase:
    return load_usecase(USECASES / f"{name}.yaml")


def _variant(tmp_path: Path, name: str, change: dict[str, Any]) -> Path:
    raw = yaml.safe_load((USECASES / f"{name}.yaml").read_text())
    for dotted, value in change.items():
        *parents, leaf = dotted.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[leaf] = value
    path = tmp_path / f"{name}-variant.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# --- The task is validated when the spec loads -------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"dataset.columns.churned_30d": {"type": "float"}},
            "task.type binary needs label 'churned_30d'.*float",
        ),
        (
            {"dataset.columns.churned_30d": {"type": "category", "allowed": ["yes", "no"]}},
            "binary needs label 'churned_30d'.*category",
        ),
        (
            {"task.type": "regression", "dataset.columns.churned_30d": {"type": "string"}},
            "regression needs a numeric label; 'churned_30d' is string",
        ),
        ({"task.slices": ["segment"]}, "task.slices refers to undeclared column 'segment'"),
        ({"task.slices": ["amount"]}, "task.slices column 'amount' is float"),
        ({"features.latest": ["country", "churned_30d"]}, "uses the label 'churned_30d'"),
    ],
)
def test_a_label_the_trainer_cannot_handle_is_refused_at_load_in_one_line(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(UseCaseError, match=message) as caught:
        load_usecase(_variant(tmp_path, "churn", change))
    assert "Traceback" not in str(caught.value)


def test_model_name_prediction_field_and_slices_come_from_the_use_case() -> None:
    demand, distress = _spec("store_demand"), _spec("firm_distress")
    assert (demand.model_name, demand.prediction_field) == ("store-demand-model", "units_next_7d_forecast")
    assert distress.slice_columns() == ["sector"] and distress.task.type == "binary"
    unnamed = demand.model_copy(update={"task": demand.task.model_copy(update={"model_name": None})})
    assert unnamed.model_name == "store-days-model"
    assert demand.signature() != distress.signature() != _spec("churn").signature()


def test_an_environment_slice_override_naming_a_missing_column_is_an_error(tmp_path: Path) -> None:
    from pipelines.training.steps import check_slice_override

    settings = load_settings("local")
    pipeline = settings.pipeline.model_copy(update={"gates": GateSettings(slice_columns=("country", "plan"))})
    wrong = settings.model_copy(update={"pipeline": pipeline})
    with pytest.raises(UseCaseError, match=r"\['country', 'plan'\] are not columns"):
        check_slice_override(wrong, _spec("store_demand"))
    check_slice_override(wrong, _spec("churn"))


# --- No example name in shared code --------------------------------------------------------------

EXAMPLE_NAMES = (
    "churn",
    "customer_id",
    "churned_30d",
    "session_minutes",
    "support_ticket",
    "event_id",
    "customer_activity",
)
# "plan" and "device" are also a CLI command and torch's device: only the unambiguous ones.
EXAMPLE_LITERALS = ("country", "amount")


def test_no_example_name_appears_in_shared_code() -> None:
    offenders = []
    for package in ("pipelines", "models", "mlops"):
        for path in sorted((PACKAGE_ROOT / package).rglob("*.py")):
            if path.relative_to(PACKAGE_ROOT).as_posix() in {
                "pipelines/datagen/churn.py",  # the example's own generator
                "pipelines/datagen/examples.py",  # the registry of example generators
            }:
                continue
            text = path.read_text()
            for name in EXAMPLE_NAMES:
                if re.search(rf"\b{name}", text, re.IGNORECASE):
                    offenders.append(f"{path.relative_to(PACKAGE_ROOT)}: {name}")
            for name in EXAMPLE_LITERALS:
                if re.search(rf"[\"']{name}[\"']", text):
                    offenders.append(f"{path.relative_to(PACKAGE_ROOT)}: {name!r}")
    assert not offenders, offenders


# --- Features a second dataset needs -------------------------------------------------------------


def test_lags_differences_category_counts_and_booleans_are_as_of_each_event(tmp_path: Path) -> None:
    usecase = load_usecase(
        _variant(
            tmp_path,
            "churn",
            {
                "features.lags": [{"column": "amount", "periods": [1], "difference": True}],
                "features.category_counts": [{"column": "device", "values": ["ios", "web"]}],
                "features.latest": ["country", "plan", "amount"],
            },
        )
    )
    day = pd.Timestamp("2025-01-01", tz="UTC")
    events = pd.DataFrame(
        {
            "event_id": ["a", "b", "c", "d"],
            "customer_id": ["k", "k", "k", "j"],
            "event_time": [day, day + pd.Timedelta(days=1), day + pd.Timedelta(days=10), day],
            "country": ["DE"] * 4,
            "plan": ["basic"] * 4,
            "device": ["ios", "web", "ios", "ios"],
            "session_minutes": [1.0] * 4,
            "amount": [10.0, 15.0, 12.0, 3.0],
            "support_ticket": [0, 1, 0, 0],
            "churned_30d": [0, 0, 1, 0],
        }
    )
    features = compute_window_features(events, usecase).set_index(["customer_id", "feature_time"])
    third = features.loc[("k", day + pd.Timedelta(days=10))]
    assert third["amount"] == 12.0 and third["amount_lag1"] == 15.0 and third["amount_diff1"] == -3.0
    assert third["device_ios_count_7d"] == 1 and third["device_web_count_7d"] == 0
    assert third["device_ios_count_30d"] == 2 and third["device_web_count_30d"] == 1
    assert np.isnan(features.loc[("j", day)]["amount_lag1"])  # no history yet: missing, not zero
    assert "amount_lag1" in usecase.nullable_features()


def test_rows_whose_label_is_not_observable_yet_are_left_out_of_training() -> None:
    usecase = _spec("store_demand")
    days = pd.date_range("2025-01-01", periods=30, freq="D", tz="UTC")
    spine = pd.DataFrame({"date": days, "units_next_7d": 1.0})
    kept = labelled_rows(spine, usecase)
    assert kept["date"].max() == days[-1] - pd.Timedelta(days=7) and len(kept) == 23


# --- Open categories and nulls -------------------------------------------------------------------


def test_an_open_category_does_not_quarantine_a_batch_for_one_new_value() -> None:
    usecase = _spec("firm_distress")
    checked = {(type(e).__name__, getattr(e, "column", None)) for e in expectations_for(usecase.dataset)}
    assert ("ExpectColumnValuesToBeInSet", "sector") not in checked
    assert ("ExpectColumnValuesToBeInSet", "distress_next_year") in checked


@pytest.fixture(scope="module")
def distress_handler() -> InferenceHandler:
    usecase = _spec("firm_distress")
    events = generate_example(usecase, 4_000, seed=1)
    features = compute_window_features(events, usecase)
    encoder = FeatureEncoder.fit(features, usecase.numeric_features(), usecase.categorical_vocabularies())
    bundle = ModelBundle.build(
        encoder, {"embedding_dim": 4, "hidden_sizes": [8], "dropout": 0.0}, "distress_next_year", Target()
    )
    return InferenceHandler(bundle, usecase, None)


def _row(handler: InferenceHandler) -> dict[str, Any]:
    usecase = handler.usecase
    events = generate_example(usecase, 1_000, seed=2)
    features = compute_window_features(events, usecase).dropna(subset=["roa_lag1", "leverage_lag1"])
    row: dict[str, Any] = json.loads(features[usecase.feature_names()].iloc[[0]].to_json(orient="records"))[0]
    return row


def test_json_null_in_a_nullable_category_and_an_unseen_open_value_are_scored(
    distress_handler: InferenceHandler,
) -> None:
    client = TestClient(create_app(VariantRouter([Variant("v1", distress_handler)])))
    row = _row(distress_handler)
    for sector in (None, "space-mining"):
        response = client.post("/invocations", json=[{**row, "sector": sector}])
        assert response.status_code == 200, response.text
        assert 0 <= response.json()["predictions"][0]["distress_probability"] <= 1
    as_csv = pd.DataFrame([{**row, "sector": None}]).to_csv(index=False)
    csv_answer = client.post(
        "/invocations", content=as_csv, headers={"content-type": "text/csv", "accept": "text/csv"}
    )
    json_answer = client.post("/invocations", json=[{**row, "sector": None}])
    assert csv_answer.status_code == 200
    assert json_answer.json()["predictions"][0]["distress_probability"] == pytest.approx(
        float(csv_answer.text.strip()), abs=1e-6
    )
    lagless = client.post("/invocations", json=[{**row, "roa_lag1": None, "roa_diff1": None}])
    assert lagless.status_code == 200, lagless.text  # a first filing has no previous year
    refused = client.post("/invocations", json=[{**row, "leverage": None}])
    assert refused.status_code == 400 and "leverage" in refused.json()["error"]


# --- Registry decisions and messages ----------------------------------------------------------


def _context(platform: Any, settings: EnvironmentSettings, model: str) -> Any:
    return SimpleNamespace(platform=platform, settings=settings, model_name=model)


def test_changed_gates_re_decide_the_same_run_and_the_output_never_contradicts_itself(
    platform: Any, local_settings: EnvironmentSettings, tmp_path: Path
) -> None:
    from pipelines.training.steps import EvaluationSummary, PreparedRun, register_step

    ctx = _context(platform, local_settings, "demo-model")
    prepared = PreparedRun("run-1", "file:///spec.json", "test.parquet", {"train": 1}, {})
    (tmp_path / "model").mkdir()
    result = {
        "model_uri": (tmp_path / "model").as_uri(),
        "tracking_run_id": "t",
        "curves_uri": "file:///c.png",
    }

    def summary(passed: bool) -> EvaluationSummary:
        gate = {
            "name": "min_auc",
            "passed": passed,
            "observed": 0.72,
            "threshold": 0.75 if not passed else 0.7,
        }
        return EvaluationSummary(passed, {"auc": 0.72}, [gate], "file:///report.html", None)

    rejected = register_step(ctx, prepared, result, summary(False))
    assert rejected.status == ApprovalStatus.REJECTED and "min_auc (0.72 vs 0.75)" in rejected.status_reason
    again = register_step(ctx, prepared, result, summary(False))
    assert (again.version, again.status, again.status_reason) == (1, rejected.status, rejected.status_reason)
    relaxed = register_step(ctx, prepared, result, summary(True))
    assert relaxed.version == 1 and relaxed.status == ApprovalStatus.APPROVED
    assert "re-evaluated against the current gates (was Rejected)" in relaxed.status_reason
    assert platform.registry.champion("demo-model").version == 1


def test_deploying_a_rejected_model_says_it_was_rejected_and_why(
    platform: Any, local_settings: EnvironmentSettings, tmp_path: Path
) -> None:
    from pipelines.deployment.steps import NotDeployable, candidate_version

    ctx = _context(platform, local_settings, "demo-model")
    with pytest.raises(NotDeployable, match="has no version yet: run the training pipeline"):
        candidate_version(ctx, None)
    version = platform.registry.register(
        ModelCandidate(
            "demo-model", "r1", _bundle_dir(tmp_path), {}, {}, {"evaluation_report": "file:///r.html"}
        )
    )
    platform.registry.set_status(
        "demo-model", version.version, ApprovalStatus.REJECTED, "failed gates: min_auc (0.61 vs 0.7)"
    )
    with pytest.raises(NotDeployable) as caught:
        candidate_version(ctx, None)
    message = str(caught.value)
    assert "v1, is Rejected: failed gates: min_auc (0.61 vs 0.7)" in message and "file:///r.html" in message


def test_a_champion_of_another_use_case_or_feature_set_is_never_compared() -> None:
    from pipelines.training.steps import comparable

    churn, demand = _spec("churn"), _spec("store_demand")
    ctx = SimpleNamespace(usecase=demand)

    def bundle(usecase: UseCase, task: str) -> ModelBundle:
        encoder = FeatureEncoder(
            usecase.numeric_features(),
            {},
            [0.0] * len(usecase.numeric_features()),
            [1.0] * len(usecase.numeric_features()),
        )
        return ModelBundle.build(
            encoder,
            {"embedding_dim": 2, "hidden_sizes": [2], "dropout": 0.0},
            usecase.dataset.label,
            Target(task),
        )

    def version(lineage: dict[str, Any]) -> Any:
        return SimpleNamespace(version=3, lineage=lineage)

    candidate = bundle(demand, "regression")
    assert (
        comparable(
            version({"usecase_signature": demand.signature()}), bundle(demand, "regression"), candidate, ctx
        )
        == ""
    )  # type: ignore[arg-type]
    other = comparable(
        version({"usecase_signature": churn.signature(), "usecase": "usecases/churn.yaml"}),
        candidate,
        candidate,
        ctx,
    )  # type: ignore[arg-type]
    assert "another use case (usecases/churn.yaml)" in other
    assert "churned_30d" in comparable(version({}), bundle(churn, "binary"), candidate, ctx)  # type: ignore[arg-type]


# --- Example data and capture ---------------------------------------------------------------------


def test_generating_data_for_a_use_case_without_a_generator_is_one_clear_line(
    tmp_path: Path, use_environment: Any
) -> None:
    from mlops.cli.app import app

    raw = yaml.safe_load((USECASES / "store_demand.yaml").read_text())
    del raw["example"]
    spec = tmp_path / "own.yaml"
    spec.write_text(yaml.safe_dump(raw))
    use_environment(spec)
    result = CliRunner().invoke(
        app, ["data", "generate", "--out", str(tmp_path / "x.parquet"), "--rows", "2000"]
    )
    assert result.exit_code == 1
    output = result.output.strip()
    assert "names no example data generator" in output and "Traceback" not in output
    assert "KeyError" not in output


def test_captured_traffic_reaches_the_lake_within_seconds_without_a_shutdown(platform: Any) -> None:
    from pipelines.serving.capture import LakeCapture

    capture = LakeCapture(platform.lake, "demo-model", flush_seconds=0.2)
    capture.capture("v1", pd.DataFrame({"k": ["a", "b"]}), [0.1, 0.2])
    deadline = time.monotonic() + 20
    while platform.lake.current_snapshot("capture.demo_model") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert platform.lake.current_snapshot("capture.demo_model") is not None
        assert len(platform.lake.read("capture.demo_model").to_pandas()) == 2
    finally:
        capture.close()


def _bundle_dir(tmp_path: Path) -> str:
    directory = tmp_path / "bundle"
    directory.mkdir()
    (directory / "bundle.json").write_text("{}")
    return directory.as_uri()


def test_a_drafted_spec_loads_and_its_guesses_name_the_roles(tmp_path: Path) -> None:
    from pipelines.usecase.draft import draft_usecase, explain, read_sample

    sample = tmp_path / "my_stores.csv"
    generate_example(_spec("store_demand"), 3_000, seed=3).to_csv(sample, index=False)
    draft = tmp_path / "draft.yaml"
    draft.write_text(draft_usecase(read_sample(sample), "my stores"))
    usecase = load_usecase(draft)
    ds = usecase.dataset
    assert (ds.entity_key, ds.event_time, ds.label, ds.primary_key) == (
        "store_id",
        "date",
        "units_next_7d",
        ("record_id",),
    )
    assert usecase.task.type == "regression" and ds.columns["store_id"].type == "string"
    assert ds.columns["region"].open and usecase.model_name == "my-stores-model"
    assert any("regression on 'units_next_7d'" in line for line in explain(usecase))
