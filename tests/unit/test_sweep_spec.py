"""A use case's sweep: its trial settings, and one clear error for a bad search space."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.usecase import UseCaseError, load_usecase
from pipelines.usecase.sweep import SweepSpec
from tests.conftest import PACKAGE_ROOT

SPACE = {"learning_rate": {"low": 0.001, "high": 0.1, "log": True}, "hidden_width": [16, 32], "depth": [1, 2]}


def test_random_trials_are_seeded_and_in_bounds() -> None:
    spec = SweepSpec(segment="country", trials_per_segment=50, space=SPACE)
    trials = spec.trials()
    assert trials == SweepSpec(segment="country", trials_per_segment=50, space=SPACE).trials()
    assert trials != SweepSpec(segment="country", trials_per_segment=50, seed=8, space=SPACE).trials()
    assert len(trials) == 50
    assert all(0.001 <= t["learning_rate"] <= 0.1 and t["hidden_width"] in (16, 32) for t in trials)
    assert all(isinstance(t["depth"], int) for t in trials)


def test_a_grid_enumerates_the_lists_in_order() -> None:
    spec = SweepSpec(
        segment="country",
        search="grid",
        trials_per_segment=10,
        space={"hidden_width": [16, 32], "depth": [1, 2]},
    )
    assert spec.trials() == [
        {"depth": 1, "hidden_width": 16},
        {"depth": 1, "hidden_width": 32},
        {"depth": 2, "hidden_width": 16},
        {"depth": 2, "hidden_width": 32},
    ]


@pytest.mark.parametrize(
    ("space", "search", "message"),
    [
        ({}, "random", "space"),
        ({"hidden_width": []}, "random", "sweep.space.hidden_width is empty"),
        ({"hidden_width": [-16]}, "random", "sweep.space.hidden_width value -16 is out of bounds"),
        ({"momentum": [0.9]}, "random", "unknown parameter 'momentum'"),
        ({"depth": [1.5]}, "random", "sweep.space.depth value 1.5 is not a whole number"),
        ({"learning_rate": {"low": 0.1, "high": 0.01}}, "random", "high 0.01 is below low 0.1"),
        ({"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}, "random", "log range needs low > 0"),
        ({"learning_rate": {"low": 0.01, "high": 0.1}}, "grid", "a grid search needs a list"),
    ],
)
def test_a_bad_search_space_is_one_line_naming_it(
    space: dict[str, Any], search: str, message: str, tmp_path: Any
) -> None:
    import yaml

    spec = yaml.safe_load((PACKAGE_ROOT / "usecases" / "churn.yaml").read_text())
    spec["sweep"] = {"segment": "country", "search": search, "space": space}
    path = tmp_path / "usecase.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(UseCaseError) as raised:
        load_usecase(path)
    text = str(raised.value)
    assert message in text and "sweep" in text and "Traceback" not in text


def test_the_segment_must_be_a_category_that_reaches_the_training_set(tmp_path: Any) -> None:
    import yaml

    spec = yaml.safe_load((PACKAGE_ROOT / "usecases" / "churn.yaml").read_text())
    for segment, message in (
        ("amount", "not a categorical column"),
        ("device", "must reach the training set"),
    ):
        spec["sweep"] = {"segment": segment, "space": {"depth": [1]}}
        path = tmp_path / "usecase.yaml"
        path.write_text(yaml.safe_dump(spec))
        with pytest.raises(UseCaseError, match=message):
            load_usecase(path)
