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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import torch

from models.bundle import META_FILE, WEIGHTS_FILE, ModelBundle, Target
from models.encoding import FeatureEncoder

SEGMENTED = "segmented"
FALLBACK = -1


def _groups(positions: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Each distinct model position (ascending) with the rows that carry it (ascending): one stable
    sort, not a scan of every row per model."""
    order = np.argsort(positions, kind="stable")
    ordered = positions[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(order) else order
    for start, stop in zip(starts, [*starts[1:], len(order)], strict=True):
        yield int(ordered[start]), order[start:stop]


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

    def positions(self, values: Sequence[object]) -> np.ndarray:
        """The position (in `segments`) of the model serving each segment value; FALLBACK for the
        fallback's."""
        lookup = self._position.get
        return np.fromiter(
            (
                FALLBACK
                if value is None
                else lookup(value if isinstance(value, str) else str(value), FALLBACK)
                for value in values
            ),
            dtype=np.int64,
            count=len(values),
        )

    def model_at(self, position: int) -> ModelBundle:
        return self.fallback if position == FALLBACK else self.models[position]

    def route(self, values: Sequence[object]) -> Iterator[tuple[ModelBundle, np.ndarray]]:
        """Each model with the positions of the rows whose segment value it serves."""
        for position, rows in _groups(self.positions(values)):
            yield self.model_at(position), rows

    def shuffleable(
        self, numeric: np.ndarray, categorical: Mapping[str, Sequence[object]]
    ) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor, torch.Tensor], np.ndarray]]:
        """Rows whose columns can be shuffled one at a time: the raw numbers, and each categorical
        column as codes into its distinct values (members encode differently, so no one encoding
        serves). The scorer routes every row by its segment value again and scores each group as
        `predict_arrays` does: the same answers, without a Python object per row and call."""
        rows = _CodedRows(self, numeric, categorical)
        return (
            torch.from_numpy(np.array(numeric, dtype=np.float64)),
            torch.from_numpy(rows.codes),
            rows.score,
        )

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


class _CodedRows:
    """Rows of a segmented model as category codes (`SegmentedBundle.shuffleable`): per column, the
    distinct values (a missing value is code -1, the last entry) and each model's embedding index
    of every distinct value, so that re-encoding a shuffled column is a table lookup."""

    def __init__(
        self, bundle: SegmentedBundle, numeric: np.ndarray, categorical: Mapping[str, Sequence[object]]
    ) -> None:
        self.bundle = bundle
        self.names = list(bundle.encoder.categorical)
        self.codes = np.empty((len(numeric), len(self.names)), dtype=np.int64)
        self.distinct: list[list[object]] = []
        for position, name in enumerate(self.names):
            codes, values = pd.factorize(np.asarray(categorical[name], dtype=object), use_na_sentinel=True)
            self.codes[:, position] = codes
            self.distinct.append([*values.tolist(), None])
        self.segment = self.names.index(bundle.column)
        self.route = bundle.positions(self.distinct[self.segment])
        self._tables: dict[int, list[np.ndarray]] = {}

    def tables(self, position: int) -> list[np.ndarray]:
        """The model at `position`'s embedding index of each distinct value, column by column."""
        if position not in self._tables:
            encoder = self.bundle.model_at(position).encoder
            self._tables[position] = [
                encoder.category_indexes(name, values)
                for name, values in zip(self.names, self.distinct, strict=True)
            ]
        return self._tables[position]

    def score(self, numbers: torch.Tensor, codes: torch.Tensor) -> np.ndarray:
        """Each row's answer from the model its (possibly shuffled) segment value routes it to."""
        raw, coded = numbers.numpy(), codes.numpy()
        out: np.ndarray | None = None
        for position, rows in _groups(self.route[coded[:, self.segment]]):
            model, tables = self.bundle.model_at(position), self.tables(position)
            indexes = np.zeros((len(rows), len(self.names)), dtype=np.int64)
            for column, table in enumerate(tables):
                indexes[:, column] = table[coded[rows, column]]
            answers = model.predict_encoded(
                model.encoder.numeric_tensor_of(raw[rows]), torch.from_numpy(indexes)
            )
            if out is None:
                out = np.empty(len(raw), dtype=answers.dtype)
            out[rows] = answers
        return out if out is not None else np.zeros(0, dtype=np.float32)
