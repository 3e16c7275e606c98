"""Behavioural tests of the trained model: invariances and directional expectations.

The model is trained once per module, on generated data, through the same encoder, network,
training loop and bundle that the pipeline uses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.bundle import ModelBundle
from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events
from pipelines.features.compute import compute_window_features, point_in_time_join
from pipelines.training.dataset import build_spine


def _features(usecase, events: pd.DataFrame) -> pd.DataFrame:
    feats = compute_window_features(events, usecase)
    return point_in_time_join(
        build_spine(events, usecase), feats, "customer_id", "event_time", usecase.features.ttl_days
    )


def test_model_learned_something(trained) -> None:
    from models.metrics import roc_auc

    bundle, test = trained
    assert roc_auc(test["churned_30d"], bundle.predict_proba(test)) > 0.75


def test_invariant_to_entity_id_and_row_order(trained) -> None:
    bundle, test = trained
    base = bundle.predict_proba(test)
    renamed = test.assign(customer_id="someone-else")
    np.testing.assert_array_equal(bundle.predict_proba(renamed), base)
    shuffled = test.sample(frac=1.0, random_state=0)
    np.testing.assert_allclose(
        bundle.predict_proba(shuffled), base[shuffled.index.to_numpy()], rtol=0, atol=1e-6
    )


def test_a_row_scores_the_same_alone_or_in_a_batch(trained) -> None:
    bundle, test = trained
    batch = bundle.predict_proba(test)
    alone = np.array([bundle.predict_proba(test.iloc[[i]])[0] for i in range(0, 3_000, 300)])
    np.testing.assert_allclose(alone, batch[::300], rtol=0, atol=1e-6)


def test_invariant_to_a_field_that_is_not_a_feature(usecase) -> None:
    events = generate_churn_events(usecase.dataset, ChurnDataConfig(rows=3_000, seed=4))
    other_device = events.assign(device=np.where(events["device"] == "ios", "web", "ios"))
    pd.testing.assert_frame_equal(_features(usecase, events), _features(usecase, other_device))


def _with_support_tickets(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    return frame.assign(
        support_ticket_sum_7d=np.minimum(count, frame["event_count_7d"].fillna(0)),
        support_ticket_sum_30d=np.minimum(count, frame["event_count_30d"].fillna(0)),
        support_ticket_sum_90d=np.minimum(count, frame["event_count_90d"].fillna(0)),
    )


def test_more_support_tickets_mean_more_churn_risk(trained) -> None:
    bundle, test = trained
    active = test[test["event_count_7d"] >= 3]
    calm = bundle.predict_proba(_with_support_tickets(active, 0))
    angry = bundle.predict_proba(_with_support_tickets(active, 3))
    assert (angry > calm).mean() > 0.8
    assert angry.mean() > calm.mean() * 1.3


def test_fading_activity_means_more_churn_risk(trained) -> None:
    bundle, test = trained
    active = test[(test["event_count_7d"] >= 3) & (test["event_count_30d"] >= 10)]
    faded = active.assign(
        event_count_7d=0, session_minutes_sum_7d=0.0, amount_sum_7d=0.0, support_ticket_sum_7d=0
    )
    assert (bundle.predict_proba(faded) > bundle.predict_proba(active)).mean() > 0.8


def test_unknown_category_still_scores(trained) -> None:
    bundle, test = trained
    unseen = test.head(20).assign(country="XX", plan=None)
    scores = bundle.predict_proba(unseen)
    assert np.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()


def test_bundle_round_trip_scores_identically(trained) -> None:
    bundle, test = trained
    again = ModelBundle.from_files(bundle.to_files())
    np.testing.assert_array_equal(again.predict_proba(test), bundle.predict_proba(test))


def test_missing_feature_column_is_named(trained) -> None:
    bundle, test = trained
    with pytest.raises(KeyError, match="event_count_7d"):
        bundle.predict_proba(test.drop(columns=["event_count_7d"]))
