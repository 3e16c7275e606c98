"""Model as data: the exported ONNX file scores like the torch bundle (within 1e-5 on 10,000 rows,
missing and unknown values included), for a binary and a regression model, and a script that cannot
import this project scores from the file alone."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pandas as pd
import pytest

from mlops.paths import PACKAGE_ROOT
from models.bundle import ModelBundle, Target
from models.encoding import FeatureEncoder
from pipelines.datagen.examples import generate_example
from pipelines.features.compute import compute_window_features
from pipelines.onnx_model import MODEL_FILE, SCHEMA_FILE, UnsupportedNetwork, model_files, schema, to_onnx
from pipelines.usecase import load_usecase


def _onnx_scores(bundle: ModelBundle, frame: pd.DataFrame) -> np.ndarray:
    session = onnxruntime.InferenceSession(to_onnx(bundle), providers=["CPUExecutionProvider"])
    feeds: dict[str, Any] = {}
    if bundle.encoder.numeric:
        feeds["numeric"] = frame[bundle.encoder.numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    for name in bundle.encoder.categorical:
        feeds[name] = np.array(["" if pd.isna(v) else str(v) for v in frame[name]], dtype=object)
    return np.asarray(session.run(["score"], feeds)[0])


def _ten_thousand(frame: pd.DataFrame, bundle: ModelBundle) -> pd.DataFrame:
    """10,000 rows from `frame`, with missing numerics, missing and unknown categories mixed in."""
    rows = frame.sample(10_000, replace=True, random_state=3).reset_index(drop=True)
    rng = np.random.default_rng(4)
    for name in bundle.encoder.numeric[:3]:
        rows.loc[rng.random(len(rows)) < 0.05, name] = np.nan
    for name in bundle.encoder.categorical:
        rows[name] = rows[name].astype(object)
        rows.loc[rng.random(len(rows)) < 0.05, name] = None
        rows.loc[rng.random(len(rows)) < 0.05, name] = "never-seen-value"
    return rows


def test_a_trained_binary_model_scores_the_same(trained: tuple[ModelBundle, pd.DataFrame]) -> None:
    bundle, test = trained
    rows = _ten_thousand(test[bundle.feature_names], bundle)
    expected = bundle.predict(rows)
    assert np.abs(_onnx_scores(bundle, rows) - expected).max() < 1e-5


def test_a_regression_model_answers_in_the_targets_units() -> None:
    usecase = load_usecase(PACKAGE_ROOT / "usecases" / "store_demand.yaml")
    features = compute_window_features(generate_example(usecase, 3_000, 2), usecase)
    encoder = FeatureEncoder.fit(features, usecase.numeric_features(), usecase.categorical_vocabularies())
    target = Target("regression", mean=120.0, std=35.0)
    bundle = ModelBundle.build(
        encoder, {"embedding_dim": 4, "hidden_sizes": [16, 8], "dropout": 0.2}, "units", target
    )
    rows = _ten_thousand(features[bundle.feature_names], bundle)
    expected = bundle.predict(rows)
    scores = _onnx_scores(bundle, rows)
    assert scores.dtype == np.float64 and np.abs(scores - expected).max() < 1e-5 * max(
        1.0, np.abs(expected).max()
    )


def test_a_layer_the_writer_does_not_know_stops_the_export(trained: tuple[ModelBundle, pd.DataFrame]) -> None:
    import copy

    from torch import nn

    bundle = copy.deepcopy(trained[0])
    bundle.network.mlp.insert(1, nn.LayerNorm(bundle.network.mlp[0].out_features))
    with pytest.raises(UnsupportedNetwork, match="LayerNorm"):
        to_onnx(bundle)


_BLOCKED_RUNNER = """
import importlib.abc, runpy, sys
PROJECT = {"pipelines", "models", "mlops", "infra", "bench"}
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in PROJECT:
            raise ImportError(f"the scoring script imported {name}")
sys.meta_path.insert(0, Refuse())
sys.path = [p for p in sys.path if p not in ("", sys.argv[1])]  # the project's own folder
script, *args = sys.argv[2:]
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
"""


def test_a_script_that_cannot_import_this_project_scores_from_the_file(
    trained: tuple[ModelBundle, pd.DataFrame], tmp_path: Path
) -> None:
    bundle, test = trained
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for name, payload in model_files(bundle).items():
        (model_dir / name).write_bytes(payload)
    assert json.loads((model_dir / SCHEMA_FILE).read_text()) == schema(bundle)
    rows = _ten_thousand(test[bundle.feature_names], bundle).head(500)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            _BLOCKED_RUNNER,
            str(PACKAGE_ROOT),
            str(PACKAGE_ROOT / "examples" / "score_onnx.py"),
            str(model_dir),
            str(tmp_path / "rows.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    scored = [float(r["score"]) for r in csv.DictReader(done.stdout.splitlines())]
    assert np.abs(np.array(scored) - bundle.predict(rows)).max() < 1e-5
    assert (model_dir / MODEL_FILE).stat().st_size > 1_000


def test_the_runner_really_refuses_this_project(tmp_path: Path) -> None:
    """The control: a script importing the project fails under the same runner."""
    script = tmp_path / "imports_project.py"
    script.write_text("import pipelines.onnx_model\n")
    done = subprocess.run(
        [sys.executable, "-I", "-c", _BLOCKED_RUNNER, str(PACKAGE_ROOT), str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode != 0 and "the scoring script imported pipelines" in done.stderr


def test_serving_scores_from_the_file_when_the_bundle_has_one(
    trained: tuple[ModelBundle, pd.DataFrame], usecase: Any, tmp_path: Path
) -> None:
    from pipelines.onnx_model import OnnxScorer, load_for_scoring
    from pipelines.serving.handler import InferenceHandler

    bundle, test = trained
    plain, exported = tmp_path / "plain", tmp_path / "exported"
    for directory, files in (
        (plain, bundle.to_files()),
        (exported, {**bundle.to_files(), **model_files(bundle)}),
    ):
        directory.mkdir()
        for name, payload in files.items():
            (directory / name).write_bytes(payload)
    loaded, fallback = load_for_scoring(plain.as_uri())
    assert fallback is loaded  # older bundles keep scoring with torch
    _, scorer = load_for_scoring(exported.as_uri())
    assert isinstance(scorer, OnnxScorer)
    rows = test[bundle.feature_names].head(300)  # what the endpoint accepts (it refuses unknown values)
    body = rows.to_json(orient="records").encode()
    _, served = InferenceHandler(bundle, usecase, scorer=scorer).predict(body, "application/json")
    _, reference = InferenceHandler(bundle, usecase).predict(body, "application/json")
    assert np.abs(np.array(served) - np.array(reference)).max() < 1e-5
