"""Per-row feature attributions by integrated gradients (Sundararajan et al., 2017).

Each feature's attribution is its distance from a baseline input times the model's gradient averaged
along the straight path from the baseline to the row, in the units of the model's answer (a
probability, or the label's units). The baseline is the training split's typical row: every number
at its training mean (zero once encoded) and every category at the embedding of "unknown", so the
attributions of a row add up to its answer minus the baseline's answer (completeness), up to the
path integral's discretisation error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from torch import nn

from models.bundle import ModelBundle

if TYPE_CHECKING:
    from models.segmented import SegmentedBundle


@dataclass(frozen=True)
class Attributions:
    values: np.ndarray  # rows x features, in the bundle's feature order
    features: list[str]
    baseline: float | list[float]  # the model's answer at the baseline input (per row, segmented)
    predictions: np.ndarray  # the model's answer per row
    steps: int


def integrated_gradients(
    bundle: ModelBundle,
    numeric: np.ndarray,
    categorical: Mapping[str, Sequence[object]],
    steps: int = 32,
) -> Attributions:
    """Attributions of each row's answer to each feature (numbers raw, categories as values)."""
    from models.segmented import SegmentedBundle

    if isinstance(bundle, SegmentedBundle):  # each row by its segment's model
        return _segmented(bundle, numeric, categorical, steps)
    network = bundle.network
    if network.training:
        network.eval()
    device = next(network.parameters()).device
    encoded, indexes = (t.to(device) for t in bundle.encode(numeric, categorical))
    rows = len(encoded)
    with torch.no_grad():
        embedded = network.embed(indexes)
        unknown = [cast(nn.Embedding, e).weight[0].expand(rows, -1) for e in network.embeddings]
        base_numeric = torch.zeros_like(encoded)
        baseline = float(bundle.answer(network.head(base_numeric[:1], [u[:1] for u in unknown]))[0])
    # Midpoint rule over `steps` points of the path, every point of every row in one batch.
    alphas = ((torch.arange(steps, dtype=encoded.dtype, device=device) + 0.5) / steps).view(steps, 1, 1)
    numeric_path = (base_numeric + alphas * (encoded - base_numeric)).reshape(steps * rows, -1)
    numeric_path.requires_grad_(True)
    embedded_path = []
    for vectors, base in zip(embedded, unknown, strict=True):
        point = (base + alphas * (vectors - base)).reshape(steps * rows, -1)
        embedded_path.append(point.requires_grad_(True))
    answers = bundle.answer(network.head(numeric_path, embedded_path))
    gradients = torch.autograd.grad(answers.sum(), [numeric_path, *embedded_path])
    mean_numeric = gradients[0].view(steps, rows, -1).mean(0)
    columns = [(encoded - base_numeric) * mean_numeric]
    for vectors, base, gradient in zip(embedded, unknown, gradients[1:], strict=True):
        columns.append(((vectors - base) * gradient.view(steps, rows, -1).mean(0)).sum(1, keepdim=True))
    values = torch.cat(columns, dim=1).detach().cpu().double().numpy()
    with torch.no_grad():
        predictions = bundle.answer(network.head(encoded, embedded)).cpu().double().numpy()
    return Attributions(values, bundle.feature_names, baseline, predictions, steps)


def _segmented(
    bundle: SegmentedBundle, numeric: np.ndarray, categorical: Mapping[str, Sequence[object]], steps: int
) -> Attributions:
    values = np.zeros((len(numeric), len(bundle.feature_names)))
    predictions, baselines = np.zeros(len(numeric)), np.zeros(len(numeric))
    groups = 0
    for model, rows, numbers, categories in bundle.route_arrays(numeric, categorical):
        part = integrated_gradients(model, numbers, categories, steps)
        values[rows], predictions[rows] = part.values, part.predictions
        baselines[rows] = part.baseline
        groups += 1
    baseline: float | list[float] = float(baselines[0]) if groups == 1 else baselines.tolist()
    return Attributions(values, bundle.feature_names, baseline, predictions, steps)
