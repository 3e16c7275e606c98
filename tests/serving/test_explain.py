"""Explanations on request: attributions per row and feature that add up to the answer, opt-in so
that normal requests are untouched, and a 4xx for a bad request for one."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipelines.serving.app import Variant, VariantRouter, create_app
from pipelines.serving.explain import MAX_EXPLAINED_ROWS, requested_features
from pipelines.serving.handler import InferenceHandler


@pytest.fixture
def client(trained: tuple[Any, pd.DataFrame], usecase: Any) -> TestClient:
    return TestClient(create_app(VariantRouter([Variant("champion", InferenceHandler(trained[0], usecase))])))


def _records(trained: tuple[Any, pd.DataFrame], rows: int) -> list[dict[str, Any]]:
    bundle, test = trained
    return json.loads(test[["customer_id", *bundle.feature_names]].head(rows).to_json(orient="records"))


def test_an_explained_answer_attributes_each_rows_answer_to_its_features(
    client: TestClient, trained: tuple[Any, pd.DataFrame]
) -> None:
    bundle = trained[0]
    answer = client.post("/invocations?explain=true", json=_records(trained, 5))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    explanation = body["explanation"]
    assert explanation["method"] == "integrated-gradients" and len(explanation["attributions"]) == 5
    for prediction, attributions in zip(body["predictions"], explanation["attributions"], strict=True):
        assert list(attributions) == bundle.feature_names
        total = sum(attributions.values())
        assert total == pytest.approx(prediction["churn_probability"] - explanation["baseline"], abs=5e-3)
    some = client.post(
        "/invocations", json=_records(trained, 2), headers={"X-Explain": "plan,amount_sum_30d"}
    ).json()["explanation"]["attributions"]
    assert [list(a) for a in some] == [["plan", "amount_sum_30d"]] * 2
    plain = client.post("/invocations", json=_records(trained, 2)).json()
    assert "explanation" not in plain  # only when asked for


def test_a_bad_request_for_an_explanation_gets_a_4xx_naming_it(
    client: TestClient, trained: tuple[Any, pd.DataFrame]
) -> None:
    unknown = client.post("/invocations?explain=plan,shoe_size", json=_records(trained, 1))
    assert (
        unknown.status_code == 400
        and "['shoe_size'] not among the model's features" in unknown.json()["error"]
    )
    many = client.post("/invocations?explain=true", json=_records(trained, MAX_EXPLAINED_ROWS + 1))
    assert many.status_code == 413 and f"at most {MAX_EXPLAINED_ROWS} rows" in many.json()["error"]
    csv = client.post("/invocations?explain=true", json=_records(trained, 1), headers={"accept": "text/csv"})
    assert csv.status_code == 400 and "explanations are JSON" in csv.json()["error"]
    assert client.post("/invocations?explain=false", json=_records(trained, 1)).status_code == 200


def test_what_a_request_asks_to_explain() -> None:
    assert requested_features(None) is None and requested_features("false") is None
    assert requested_features("true") == [] and requested_features("ALL") == []
    assert requested_features(" plan , tenure_days ") == ["plan", "tenure_days"]


def test_attributions_are_zero_for_features_at_the_baseline(trained: tuple[Any, pd.DataFrame]) -> None:
    from models.explain import integrated_gradients

    bundle, test = trained
    encoder = bundle.encoder
    numeric = test[encoder.numeric].to_numpy(dtype=np.float64, na_value=np.nan)[:10].copy()
    # a number at its training mean (zero once encoded) and an unknown category are the baseline
    mean = encoder.means[0]  # the encoder standardises sign(x) log1p(|x|): invert it
    numeric[:, 0] = np.sign(mean) * np.expm1(abs(mean))
    categorical = {name: test[name].tolist()[:10] for name in encoder.categorical}
    first_category = next(iter(encoder.categorical))
    categorical[first_category] = [None] * 10
    # 256 points: the midpoint rule's error falls with the square of the points (at 64 it was up to
    # 2.4e-3 for a model trained under other thread timings)
    result = integrated_gradients(bundle, numeric, categorical, steps=256)
    names = bundle.feature_names
    assert np.abs(result.values[:, 0]).max() < 1e-6
    assert np.abs(result.values[:, names.index(first_category)]).max() < 1e-6
    completeness = result.values.sum(1) - (result.predictions - result.baseline)
    assert np.abs(completeness).max() < 1e-3
