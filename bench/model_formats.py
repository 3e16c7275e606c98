"""Scoring cost of the two forms of a model: the exported ONNX file (onnxruntime) vs the torch bundle.

Both score the same rows from the same arrays (what the endpoint hands them), one row and 100 rows
at a time, on one thread, alternating so that the machine's noise falls on both alike.

    python -m bench.model_formats [--calls 3000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from bench.common import report


def _timings(score: Callable[[], Any], calls: int) -> np.ndarray:
    for _ in range(min(200, calls)):
        score()
    samples = np.empty(calls)
    for i in range(calls):
        started = time.perf_counter()
        score()
        samples[i] = time.perf_counter() - started
    return samples * 1000


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3_000)
    args = parser.parse_args(argv)

    import torch

    from mlops.paths import PACKAGE_ROOT
    from models.bundle import ModelBundle, Target
    from models.encoding import FeatureEncoder
    from pipelines.datagen.examples import generate_example
    from pipelines.features.compute import compute_window_features
    from pipelines.onnx_model import OnnxScorer, to_onnx
    from pipelines.usecase import load_usecase

    torch.set_num_threads(1)
    usecase = load_usecase(PACKAGE_ROOT / "usecases" / "churn.yaml")
    features = compute_window_features(generate_example(usecase, 5_000, 2), usecase)
    encoder = FeatureEncoder.fit(features, usecase.numeric_features(), usecase.categorical_vocabularies())
    architecture = {"embedding_dim": 8, "hidden_sizes": [64, 32], "dropout": 0.1}
    bundle = ModelBundle.build(encoder, architecture, usecase.dataset.label, Target())
    bundle.network.eval()
    scorer = OnnxScorer(to_onnx(bundle), encoder, threads=1)

    results: dict[str, Any] = {}
    lines: list[tuple[str, str]] = []
    for rows in (1, 100):
        frame = features[bundle.feature_names].head(rows)
        numeric = frame[encoder.numeric].to_numpy(np.float64)
        categorical = {name: frame[name].astype(str).tolist() for name in encoder.categorical}
        torch_ms, onnx_ms = [], []
        with_torch = partial(bundle.predict_arrays, numeric, categorical)
        with_onnx = partial(scorer.predict_arrays, numeric, categorical)
        for _ in range(3):  # alternate rounds
            torch_ms.append(_timings(with_torch, args.calls // 3))
            onnx_ms.append(_timings(with_onnx, args.calls // 3))
        t, o = np.concatenate(torch_ms), np.concatenate(onnx_ms)
        figures = {
            "torch_p50_ms": float(np.percentile(t, 50)),
            "torch_p99_ms": float(np.percentile(t, 99)),
            "onnx_p50_ms": float(np.percentile(o, 50)),
            "onnx_p99_ms": float(np.percentile(o, 99)),
        }
        results[f"{rows}_rows"] = figures
        lines += [
            (
                f"{rows} row(s): torch bundle (p50 / p99)",
                f"{figures['torch_p50_ms']:.3f} / {figures['torch_p99_ms']:.3f} ms",
            ),
            (
                f"{rows} row(s): ONNX file, onnxruntime (p50 / p99)",
                f"{figures['onnx_p50_ms']:.3f} / {figures['onnx_p99_ms']:.3f} ms",
            ),
            (
                f"{rows} row(s): torch / ONNX at p50",
                f"{figures['torch_p50_ms'] / figures['onnx_p50_ms']:.1f}x",
            ),
        ]
    report("model_formats", lines, results)
    return results


if __name__ == "__main__":
    main()
