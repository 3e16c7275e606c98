"""A segmented model: one bundle per segment (a sweep's winners) and a fallback bundle (the global
model) for rows of any other segment. It is a `ModelBundle` to everything that scores: rows are
routed by their segment's value, each group scored by its model in one vectorised call.

Stored as the same two bundle files: the fallback's metadata with a `segmented` section naming the
column and each member's architecture, encoder and target, and one weights file holding every
network's state.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import torch

from models.bundle import META_FILE, WEIGHTS_FILE, ModelBundle, Target
from models.encoding import FeatureEncoder

SEGMENTED = "segmented"
FALLBACK = -1


class SegmentedBundle(ModelBundle):
    """Routes each row to its segment's model; rows of other segments (or none) to the fallback."""

    def __init__(self, fallback: ModelBundle, column: str, members: Mapping[str, ModelBundle]) -> None:
        super().__init__(
            fallback.network, fallback.encoder, fallback.architecture, fallback.label, fallback.target
        )
        if column not in fallback.encoder.categorical:
            raise ValueError(f"segment column {column!r} is not a categorical feature of the model")
        for segment, member in members.items():
            if member.feature_names != fallback.feature_names or member.task != fallback.task:
                raise ValueError(
                    f"segment {segment!r}: its model's features or task differ from the fallback's"
                )
        self.column, self.fallback = column, fallback
        self.segments = list(members)
        self.models = [members[segment] for segment in self.segments]
        self._position = {segment: position for position, segment in enumerate(self.segments)}

    @property
    def members(self) -> dict[str, ModelBundle]:
        return dict(zip(self.segments, self.models, strict=True))

    def route(self, values: Sequence[object]) -> Iterator[tuple[ModelBundle, np.ndarray]]:
        """Each model with the positions of the rows whose segment value it serves."""
        lookup = self._position.get
        positions = np.fromiter(
            (
                FALLBACK
                if value is None
                else lookup(value if isinstance(value, str) else str(value), FALLBACK)
                for value in values
            ),
            dtype=np.int64,
            count=len(values),
        )
        for position in np.unique(positions):
            model = self.fallback if position == FALLBACK else self.models[position]
            yield model, np.flatnonzero(positions == position)

    def route_arrays(
        self, numeric: np.ndarray, categorical: Mapping[str, Sequence[object]]
    ) -> Iterator[tuple[ModelBundle, np.ndarray, np.ndarray, dict[str, Sequence[object]]]]:
        """`route` of raw feature arrays: each model, its rows' positions and their features."""
        groups = list(self.route(categorical[self.column]))
        if len(groups) == 1:  # one segment (a one-row request): no copies
            yield groups[0][0], groups[0][1], numeric, dict(categorical)
            return
        columns = {name: np.asarray(values, dtype=object) for name, values in categorical.items()}
        for model, rows in groups:
            yield (
                model,
                rows,
                numeric[rows],
                {name: values[rows].tolist() for name, values in columns.items()},
            )

    def predict_arrays(
        self, numeric: np.ndarray, categorical: Mapping[str, Sequence[object]], batch_size: int = 65_536
    ) -> np.ndarray:
        out: np.ndarray | None = None
        for model, rows, numbers, categories in self.route_arrays(numeric, categorical):
            answers = model.predict_arrays(numbers, categories, batch_size)
            if out is None:
                out = np.empty(len(numeric), dtype=answers.dtype)
            out[rows] = answers
        return out if out is not None else np.zeros(0, dtype=np.float32)

    def predict(self, frame: pd.DataFrame, batch_size: int = 65_536) -> np.ndarray:
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            raise KeyError(f"feature frame lacks columns: {', '.join(missing)}")
        out: np.ndarray | None = None
        for model, rows in self.route(frame[self.column].tolist()):
            answers = model.predict(frame.iloc[rows], batch_size)
            if out is None:
                out = np.empty(len(frame), dtype=answers.dtype)
            out[rows] = answers
        return out if out is not None else np.zeros(0, dtype=np.float32)

    def to_files(self) -> dict[str, bytes]:
        fallback = self.fallback.to_files()
        meta = json.loads(fallback[META_FILE])
        meta[SEGMENTED] = {
            "column": self.column,
            "members": [
                {
                    "segment": segment,
                    "architecture": model.architecture,
                    "encoder": model.encoder.to_dict(),
                    "target": asdict(model.target),
                }
                for segment, model in zip(self.segments, self.models, strict=True)
            ],
        }
        weights = io.BytesIO()
        torch.save(
            {
                "fallback": {k: v.cpu() for k, v in self.fallback.network.state_dict().items()},
                "members": [{k: v.cpu() for k, v in m.network.state_dict().items()} for m in self.models],
            },
            weights,
        )
        return {WEIGHTS_FILE: weights.getvalue(), META_FILE: json.dumps(meta, indent=2).encode()}

    @classmethod
    def from_segmented_files(cls, files: dict[str, bytes]) -> SegmentedBundle:
        """The segmented bundle of `to_files`' output."""
        meta = json.loads(files[META_FILE])
        section = meta.pop(SEGMENTED)
        states = torch.load(io.BytesIO(files[WEIGHTS_FILE]), map_location="cpu", weights_only=True)

        def built(spec: dict[str, Any], state: dict[str, torch.Tensor]) -> ModelBundle:
            bundle = ModelBundle.build(
                FeatureEncoder.from_dict(spec["encoder"]),
                spec["architecture"],
                meta["label"],
                Target(**spec["target"]),
            )
            bundle.network.load_state_dict(state)
            bundle.network.eval()
            return bundle

        fallback = built(meta, states["fallback"])
        members = {
            spec["segment"]: built(spec, state)
            for spec, state in zip(section["members"], states["members"], strict=True)
        }
        return cls(fallback, section["column"], members)
