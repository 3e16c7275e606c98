from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.usecase import UseCaseError, load_usecase


def test_churn_spec_derives_feature_names(usecase) -> None:
    names = usecase.feature_names()
    assert "event_count_7d" in names and "support_ticket_sum_90d" in names
    assert usecase.categorical_features() == ["country", "plan"]
    assert usecase.value_types()["event_count_30d"] == "integral"
    assert len(usecase.dataset.categorical_vocabulary("country")) >= 50


def test_country_codes_survive_yaml(usecase) -> None:
    # YAML 1.1 reads a bare NO (Norway) as false: the spec must keep it a string.
    assert "NO" in usecase.dataset.categorical_vocabulary("country")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


BASE = """
dataset:
  name: d
  entity_key: k
  event_time: t
  label: y
  primary_key: [id]
  columns:
    id: {type: string}
    k: {type: string}
    t: {type: timestamp}
    y: {type: int, allowed: [0, 1]}
    v: {type: float, min: 0}
features:
  name: fv
  windows_days: [7]
  aggregations: [{function: sum, column: v}]
"""


def test_valid_minimal_spec(tmp_path: Path) -> None:
    assert load_usecase(_write(tmp_path, BASE)).numeric_features() == ["v_sum_7d"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("entity_key: k", "entity_key: nope"), "entity_key column 'nope' is not declared"),
        (("t: {type: timestamp}", "t: {type: string}"), "must have type timestamp"),
        (("column: v}", "column: k}"), "column 'k' is not numeric"),
        (("v: {type: float, min: 0}", "v: {type: float, min: 5, max: 1}"), "min .* greater than max"),
        (("{function: sum, column: v}", "{function: sum}"), "needs a column"),
    ],
)
def test_malformed_spec_names_the_problem(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(UseCaseError, match=message):
        load_usecase(_write(tmp_path, BASE.replace(*change)))
