"""The encoder's large-frame paths (column-wise statistics, block-wise numerics, vectorised
categoricals) give what the whole-matrix and value-by-value encodings give."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models import encoding
from models.encoding import FeatureEncoder


def _frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    amount = rng.lognormal(3, 1, rows) * rng.choice([-1, 1], rows)
    amount[rng.random(rows) < 0.05] = np.nan
    plan = rng.choice(np.array(["basic", "pro", "gold", None], dtype=object), rows)
    return pd.DataFrame(
        {
            "amount": amount,
            "visits": rng.integers(0, 50, rows).astype(float),
            "empty": np.full(rows, np.nan),
            "plan": pd.Series(plan, dtype="str"),
            "code": rng.choice(np.array([1, 2, 3.5, None], dtype=object), rows),
        }
    )


def test_large_frames_encode_as_the_whole_matrix_and_each_value_would(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    frame = _frame(5_003)
    encoder = FeatureEncoder.fit(
        frame, ["amount", "visits", "empty"], {"plan": ["basic", "pro"], "code": None}
    )
    signed = encoding._signed_log(frame, ["amount", "visits"])
    assert np.allclose(encoder.means[:2], np.nanmean(signed, axis=0), rtol=1e-12)
    assert np.allclose(encoder.stds[:2], np.nanstd(signed, axis=0), rtol=1e-12)
    assert np.isnan(encoder.means[2]) and encoder.stds[2] == 1.0  # all missing: as before

    monkeypatch.setattr(encoding, "ENCODE_BLOCK_ROWS", 1_000)
    blocked = encoder.numeric_tensor(frame).numpy()
    monkeypatch.setattr(encoding, "ENCODE_BLOCK_ROWS", 1_000_000)
    assert np.array_equal(blocked, encoder.numeric_tensor(frame).numpy())

    columns = {name: frame[name].tolist() for name in encoder.categorical}
    expected = encoder.categorical_tensor_of(columns, len(frame)).numpy()
    got = encoder.categorical_tensor(frame).numpy()
    assert np.array_equal(got, expected)
    assert set(np.unique(got[:, 0])) == {0, 1, 2} and got[:, 1].max() >= 1
