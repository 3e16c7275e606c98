"""A segmented model answers each row with its segment's model (the fallback for any other segment
or none), from frames and from serving's arrays alike, keeps every weight through its files, explains
each row by the model that answered it, and refuses members it could not route to."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from models.bundle import ModelBundle
from models.encoding import FeatureEncoder
from models.explain import integrated_gradients
from models.segmented import SegmentedBundle

NUMERIC = ["spend", "visits"]
VOCABULARY: dict[str, list[str] | None] = {"country": ["DE", "FR", "IT", "ES"], "plan": ["basic", "pro"]}
CATEGORICAL = list(VOCABULARY)
ARCHITECTURE = {"embedding_dim": 4, "hidden_sizes": [8], "dropout": 0.0}


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "spend": rng.gamma(2.0, 10.0, rows),
            "visits": rng.poisson(3, rows).astype(float),
            "country": rng.choice(["DE", "FR", "IT", "ES"], rows),
            "plan": rng.choice(["basic", "pro"], rows),
        }
    )


def _bundle(frame: pd.DataFrame, seed: int) -> ModelBundle:
    torch.manual_seed(seed)
    return ModelBundle.build(FeatureEncoder.fit(frame, NUMERIC, VOCABULARY), ARCHITECTURE, "churned")


@pytest.fixture
def segmented() -> SegmentedBundle:
    data = _frame(400, 1)
    members = {c: _bundle(data[data["country"] == c], seed) for seed, c in enumerate(("DE", "FR"), start=2)}
    return SegmentedBundle(_bundle(data, 1), "country", members)


def test_each_row_is_answered_by_its_segments_model(segmented: SegmentedBundle) -> None:
    frame = _frame(300, 9)
    frame.loc[::17, "country"] = None  # no segment: the fallback answers
    answers = segmented.predict(frame)
    for country, model in (("DE", segmented.members["DE"]), ("FR", segmented.members["FR"])):
        rows = (frame["country"] == country).to_numpy()
        assert rows.sum() > 20
        np.testing.assert_array_equal(answers[rows], model.predict(frame[rows]))
    others = ~frame["country"].isin(["DE", "FR"]).to_numpy()
    np.testing.assert_array_equal(answers[others], segmented.fallback.predict(frame[others]))
    # Members answer differently from the fallback, so the routing is what the test sees.
    de = (frame["country"] == "DE").to_numpy()
    assert not np.allclose(answers[de], segmented.fallback.predict(frame[de]))

    numeric = frame[NUMERIC].to_numpy(np.float64)
    categorical = {name: frame[name].tolist() for name in CATEGORICAL}
    np.testing.assert_allclose(segmented.predict_arrays(numeric, categorical), answers, rtol=0, atol=1e-7)
    one = segmented.predict_arrays(numeric[:1], {name: values[:1] for name, values in categorical.items()})
    assert one.shape == (1,) and one[0] == pytest.approx(answers[0], abs=1e-7)


def test_files_keep_every_model(segmented: SegmentedBundle) -> None:
    loaded = ModelBundle.from_files(segmented.to_files())
    assert isinstance(loaded, SegmentedBundle)
    assert loaded.column == "country" and loaded.segments == ["DE", "FR"]
    frame = _frame(200, 4)
    np.testing.assert_array_equal(loaded.predict(frame), segmented.predict(frame))


def test_each_row_is_explained_by_the_model_that_answered_it(segmented: SegmentedBundle) -> None:
    frame = _frame(12, 5)
    frame["country"] = ["DE", "FR", "IT"] * 4
    numeric = frame[NUMERIC].to_numpy(np.float64)
    categorical = {name: frame[name].tolist() for name in CATEGORICAL}
    explained = integrated_gradients(segmented, numeric, categorical, steps=16)
    assert isinstance(explained.baseline, list) and len(explained.baseline) == 12
    de = np.flatnonzero(frame["country"] == "DE")
    alone = integrated_gradients(
        segmented.members["DE"],
        numeric[de],
        {k: [v[i] for i in de] for k, v in categorical.items()},
        steps=16,
    )
    np.testing.assert_allclose(explained.values[de], alone.values, atol=1e-9)
    assert explained.baseline[de[0]] == pytest.approx(alone.baseline)


def test_members_it_could_not_route_to_are_refused() -> None:
    data = _frame(200, 1)
    fallback = _bundle(data, 1)
    with pytest.raises(ValueError, match="segment column 'spend' is not a categorical feature"):
        SegmentedBundle(fallback, "spend", {})
    other = ModelBundle.build(FeatureEncoder.fit(data, ["spend"], VOCABULARY), ARCHITECTURE, "churned")
    with pytest.raises(ValueError, match="segment 'DE': its model's features or task differ"):
        SegmentedBundle(fallback, "country", {"DE": other})


def test_the_onnx_file_routes_as_the_bundle_does(segmented: SegmentedBundle) -> None:
    import onnxruntime

    from pipelines.onnx_model import OnnxScorer, to_onnx

    frame = _frame(10_000, 11)
    frame["country"] = frame["country"].astype(object)
    frame.loc[::13, "country"] = None  # no segment: the fallback answers
    frame.loc[5::29, "country"] = "never-seen"
    numeric = frame[NUMERIC].to_numpy(np.float64, copy=True)
    numeric[::31, 0] = np.nan
    categorical = {name: frame[name].tolist() for name in CATEGORICAL}
    expected = segmented.predict_arrays(numeric, categorical)

    scorer = OnnxScorer(to_onnx(segmented), segmented.encoder)
    assert np.abs(scorer.predict_arrays(numeric, categorical) - expected).max() < 1e-5
    for row in (0, 1, 5, 13):  # a request of one row, whatever its segment
        one = scorer.predict_arrays(
            numeric[row : row + 1], {k: v[row : row + 1] for k, v in categorical.items()}
        )
        assert one[0] == pytest.approx(expected[row], abs=1e-5)
    empty = scorer.predict_arrays(numeric[:0], {k: v[:0] for k, v in categorical.items()})
    assert empty.shape == (0,)
    # Plain onnxruntime, no project code: the same inputs any caller would give.
    session = onnxruntime.InferenceSession(to_onnx(segmented), providers=["CPUExecutionProvider"])
    feeds = {
        "numeric": numeric,
        **{k: np.array(["" if v is None else v for v in vs], dtype=object) for k, vs in categorical.items()},
    }
    assert np.abs(session.run(["score"], feeds)[0] - expected).max() < 1e-5


def test_importance_shuffles_raw_features_and_routes_each_row_again(segmented: SegmentedBundle) -> None:
    """A segmented model's permutation importance is its own, not its fallback's: each shuffle is
    of a raw column, the rows are routed again (a shuffled segment column moves rows between
    models), and the answers are `predict_arrays`' exactly."""
    from models.importance import permutation_importance

    frame = _frame(600, 7)
    frame.loc[::23, "country"] = None
    frame.loc[::31, "plan"] = "enterprise"  # unknown to every encoder
    labels = (frame["spend"] > 20).to_numpy(np.float64)
    numeric = frame[NUMERIC].to_numpy(np.float64)
    categorical = {name: frame[name].tolist() for name in CATEGORICAL}

    numbers, codes, score = segmented.shuffleable(numeric, categorical)
    np.testing.assert_array_equal(score(numbers, codes), segmented.predict_arrays(numeric, categorical))

    def metric(answers: np.ndarray) -> dict[str, float]:
        return {"all": float(-np.mean((answers - labels) ** 2))}

    ours = {
        i.feature: i.drop
        for i in permutation_importance(segmented, numeric, categorical, metric, 3, 5)["all"]
    }

    # The reference: shuffle each raw column with the same permutations and score with the router.
    shuffles, reference = np.random.default_rng(5), {}
    base = metric(segmented.predict_arrays(numeric, categorical))["all"]
    for position, feature in enumerate(segmented.feature_names):
        drops = []
        for _ in range(3):
            order = shuffles.permutation(len(frame))
            moved_numeric, moved_categorical = numeric.copy(), dict(categorical)
            if position < len(NUMERIC):
                moved_numeric[:, position] = numeric[order, position]
            else:
                values = np.asarray(categorical[feature], dtype=object)[order]
                moved_categorical[feature] = values.tolist()
            drops.append(base - metric(segmented.predict_arrays(moved_numeric, moved_categorical))["all"])
        reference[feature] = float(np.mean(drops))
    assert ours == pytest.approx(reference, rel=0, abs=1e-12)
    # Not the fallback's importance (the bug this pins: scoring only the fallback's network).
    fallback = {
        i.feature: i.drop
        for i in permutation_importance(segmented.fallback, numeric, categorical, metric, 3, 5)["all"]
    }
    assert ours != pytest.approx(fallback, abs=1e-9)
