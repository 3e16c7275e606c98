"""The inference handler: parse JSON or CSV, validate against the use case, fetch online features
when a request carries only entity keys, score in one batch.

Every problem with a request raises `BadRequest` naming the field, which the app turns into a 4xx:
a bad payload never becomes a 5xx.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from models.bundle import ModelBundle
from pipelines.ports import OnlineStorePort
from pipelines.usecase import UseCase

MAX_ROWS = 10_000


class BadRequest(Exception):
    """The request cannot be scored; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


MAX_DEPTH = 32  # {"instances": [{...}]} needs 3; anything deeper is not a row
MAX_INT_DIGITS = 18  # beyond int64 a value is not a feature, and numpy would overflow on it
_JSON_TOKENS = re.compile(rb'\\.|["\[\]{}]')
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_nesting(body: bytes, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit` before any parser recurses into it (strings ignored)."""
    depth, in_string = 0, False
    for token in _JSON_TOKENS.finditer(body):
        char = token.group()
        if char == b'"':
            in_string = not in_string
        elif in_string or len(char) == 2:
            continue
        elif char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise BadRequest(f"JSON nested deeper than {limit} levels")
        else:
            depth -= 1


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BadRequest(f"number with {len(text.lstrip('-'))} digits is out of range")
    return int(text)


def _no_surrogates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    for key, value in pairs:
        for text in (key, value):
            if isinstance(text, str) and _SURROGATE.search(text):
                raise BadRequest(
                    f"field {key.encode('utf-8', 'backslashreplace').decode()!r}: lone surrogate in text"
                )
    return dict(pairs)


def parse_json(body: bytes) -> Any:
    """JSON with its nesting, integer size and text validity bounded: every malformed body is a 4xx."""
    check_nesting(body)
    try:
        return json.loads(body, parse_int=_bounded_int, object_pairs_hook=_no_surrogates)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    except RecursionError:
        raise BadRequest(f"JSON nested deeper than {MAX_DEPTH} levels") from None


def parse_body(body: bytes, content_type: str) -> pd.DataFrame:
    """Rows from a JSON body ({"instances": [...]}, a list of objects, or one object) or CSV with a header."""
    if not body.strip():
        raise BadRequest("empty request body")
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("application/json", ""):
        payload = parse_json(body)
        if isinstance(payload, dict) and "instances" in payload:
            payload = payload["instances"]
        if isinstance(payload, dict):
            payload = [payload]
        if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
            raise BadRequest('JSON body must be an object, a list of objects, or {"instances": [...]}')
        if len(payload) > MAX_ROWS:
            raise BadRequest(f"request has {len(payload)} rows; at most {MAX_ROWS} per call", status=413)
        for row in payload:
            nested = next((k for k, v in row.items() if isinstance(v, (dict, list))), None)
            if nested is not None:
                raise BadRequest(
                    f"field {nested!r}: expected a value, got a nested {type(row[nested]).__name__}"
                )
        return pd.DataFrame(payload)
    if kind == "text/csv":
        try:
            return pd.read_csv(io.BytesIO(body), keep_default_na=False, na_values=[""])
        except Exception as exc:
            raise BadRequest(f"body is not valid CSV with a header row: {exc}") from exc
    raise BadRequest(
        f"unsupported content type {content_type!r} (use application/json or text/csv)", status=415
    )


@dataclass
class InferenceHandler:
    bundle: ModelBundle
    usecase: UseCase
    online_store: OnlineStorePort | None = None

    @property
    def entity_key(self) -> str:
        return self.usecase.dataset.entity_key

    @cached_property
    def captured_columns(self) -> list[str]:
        """What data capture keeps of a request: the entity key and the model's inputs, nothing a client adds."""
        return [self.entity_key, *(f for f in self.bundle.feature_names if f != self.entity_key)]

    def _non_negative(self, feature: str) -> bool:
        """Aggregates of columns that cannot be negative cannot be negative either."""
        for agg in self.usecase.features.aggregations:
            for window in self.usecase.features.windows_days:
                if agg.feature_name(window) == feature:
                    column = self.usecase.dataset.columns.get(agg.column or "")
                    return agg.function == "count" or (
                        column is not None and column.min is not None and column.min >= 0
                    )
        return False

    def _with_online_features(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.online_store is None:
            raise BadRequest(
                f"request carries only {self.entity_key!r} but this endpoint has no online store"
            )
        keys = [str(k) for k in frame[self.entity_key]]
        found = self.online_store.read(self.usecase.features.name, keys, self.entity_key)
        known = set(found[self.entity_key]) if not found.empty else set()
        missing = [k for k in keys if k not in known]
        if missing:
            raise BadRequest(f"{self.entity_key}: no online features for {missing[:5]}", status=404)
        return frame[[self.entity_key]].merge(found, on=self.entity_key, how="left")

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame with every model feature, checked against the use case's types and sets."""
        if frame.empty:
            raise BadRequest("request has no rows")
        if len(frame) > MAX_ROWS:
            raise BadRequest(f"request has {len(frame)} rows; at most {MAX_ROWS} per call", status=413)
        features = self.bundle.feature_names
        if self.entity_key in frame.columns and not any(f in frame.columns for f in features):
            frame = self._with_online_features(frame)
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise BadRequest(
                f"missing field(s): {', '.join(missing)} (or send only {self.entity_key!r} to use the online store)"
            )
        numeric = self.bundle.encoder.numeric
        values = self._numeric_block(frame, numeric)
        finite = np.isfinite(values)
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            raise BadRequest(
                f"{numeric[col]}: expected a finite number, got {frame[numeric[col]].iloc[row]!r}"
            )
        negative = (values < 0) & self._non_negative_mask
        if negative.any():
            row, col = np.argwhere(negative)[0]
            raise BadRequest(f"{numeric[col]}: must not be negative, got {values[row, col]:g}")
        frame = frame.copy()
        frame[numeric] = values
        for name, allowed in self._vocabularies.items():
            present = {str(v) for v in frame[name].tolist() if not (isinstance(v, float) and math.isnan(v))}
            unknown = sorted(present - allowed)
            if unknown:
                raise BadRequest(f"{name}: {unknown[:3]} not among the {len(allowed)} allowed values")
        return frame

    @staticmethod
    def _numeric_block(frame: pd.DataFrame, numeric: list[str]) -> np.ndarray:
        """The numeric features as floats; names the first field that is not a number."""
        block = frame[numeric]
        if all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in block.dtypes):
            return block.to_numpy(dtype=float)
        for name in numeric:  # slow path, for a bad request only: find and name the culprit
            converted = pd.to_numeric(frame[name], errors="coerce")
            if converted.isna().any() or pd.api.types.is_bool_dtype(frame[name]):
                culprit = frame[name][converted.isna()]
                shown = culprit.iloc[0] if len(culprit) else frame[name].iloc[0]
                raise BadRequest(f"{name}: expected a finite number, got {shown!r}")
        return block.apply(pd.to_numeric).to_numpy(dtype=float)

    @cached_property
    def _non_negative_mask(self) -> np.ndarray:
        return np.array([self._non_negative(name) for name in self.bundle.encoder.numeric])

    @cached_property
    def _vocabularies(self) -> dict[str, set[str]]:
        return {name: set(vocab) for name, vocab in self.bundle.encoder.categorical.items()}

    def predict(self, body: bytes, content_type: str) -> tuple[pd.DataFrame, list[float]]:
        """The validated rows and their churn probabilities."""
        frame = self.validate(parse_body(body, content_type))
        return frame, [float(p) for p in self.bundle.predict_proba(frame)]

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Batch inference over a file or lake table already loaded as a frame."""
        return self.bundle.predict_proba(self.validate(frame.copy()))


def response_body(scores: list[float], accept: str) -> tuple[bytes, str]:
    if "text/csv" in accept:
        return ("\n".join(f"{s:.6f}" for s in scores) + "\n").encode(), "text/csv"
    payload: dict[str, Any] = {"predictions": [{"churn_probability": s} for s in scores]}
    return json.dumps(payload).encode(), "application/json"
