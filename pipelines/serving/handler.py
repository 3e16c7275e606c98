"""The inference handler: parse JSON or CSV, validate against the use case, fetch online features
for what a request leaves out, score in one batch.

Where feature values come from, per request: a feature the request carries is used as sent (the
request wins); a feature it leaves out is read from the online store by the entity key; fields that
are neither features nor the key are ignored. The answer says which was which, so nothing is silent.

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
SOURCES = "feature_sources"  # frame.attrs key: {"request": [...], "online_store": [...], "ignored": [...]}


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


def _is_null(value: Any) -> bool:
    """JSON null, or the NaN pandas puts in an empty CSV cell."""
    return value is None or (isinstance(value, float) and math.isnan(value))


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

    def _with_online_features(self, frame: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
        """The request's rows with the `wanted` features read from the online store by entity key."""
        if self.online_store is None:
            raise BadRequest(
                f"missing field(s): {', '.join(wanted)} (this endpoint has no online store to fill them)"
            )
        if frame[self.entity_key].isna().any():
            raise BadRequest(f"{self.entity_key}: a row without its key cannot use the online store")
        keys = [str(k) for k in frame[self.entity_key]]
        found = self.online_store.read(self.usecase.features.name, keys, self.entity_key)
        known = set(found[self.entity_key]) if not found.empty else set()
        missing = [k for k in keys if k not in known]
        if missing:
            raise BadRequest(f"{self.entity_key}: no online features for {missing[:5]}", status=404)
        looked_up = found[[self.entity_key, *wanted]].drop_duplicates(self.entity_key, keep="last")
        merged = frame.assign(**{self.entity_key: keys}).merge(looked_up, on=self.entity_key, how="left")
        return merged.set_axis(frame.index)

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame with every model feature, checked against the use case's types and sets.

        `frame.attrs["feature_sources"]` records which features came from the request and which
        from the online store, and which fields were ignored.
        """
        return self._validated(frame)[0]

    def _validated(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """`validate`, also returning the numeric features as the float array it checked."""
        if frame.empty:
            raise BadRequest("request has no rows")
        if len(frame) > MAX_ROWS:
            raise BadRequest(f"request has {len(frame)} rows; at most {MAX_ROWS} per call", status=413)
        features = self.bundle.feature_names
        sent = [f for f in features if f in frame.columns]
        ignored = [str(c) for c in frame.columns if c not in features and c != self.entity_key]
        absent = [f for f in features if f not in frame.columns]
        if absent and self.entity_key not in frame.columns:
            raise BadRequest(
                f"missing field(s): {', '.join(absent)} (or send {self.entity_key!r} to read them from the online store)"
            )
        if absent:
            frame = self._with_online_features(frame, absent)
        numeric = self.bundle.encoder.numeric
        values, converted = self._numeric_block(frame, numeric)
        bad = np.isinf(values) | (np.isnan(values) & ~self._nullable_numeric)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise BadRequest(
                f"{numeric[col]}: expected a finite number, got {frame[numeric[col]].iloc[row]!r}"
            )
        negative = (values < 0) & self._non_negative_mask
        if negative.any():
            row, col = np.argwhere(negative)[0]
            raise BadRequest(f"{numeric[col]}: must not be negative, got {values[row, col]:g}")
        if converted:  # text or nulls became numbers: the model and the capture see the numbers
            frame = frame.copy()
            frame[numeric] = values
        for name, allowed in self._vocabularies.items():
            self._check_category(name, frame[name].tolist(), allowed)
        frame.attrs[SOURCES] = {"request": sent, "online_store": absent, "ignored": ignored}
        return frame, values

    def _check_category(self, name: str, values: list[Any], allowed: set[str] | None) -> None:
        """Nulls only where the use case allows them; values from the declared set unless it is open."""
        present = [v for v in values if not _is_null(v)]
        if len(present) < len(values) and name not in self._nullable:
            raise BadRequest(f"{name}: null is not allowed (the use case declares it not nullable)")
        if allowed is None:
            return
        unknown = sorted({str(v) for v in present} - allowed)
        if unknown:
            raise BadRequest(f"{name}: {unknown[:3]} not among the {len(allowed)} allowed values")

    @staticmethod
    def _numeric_block(frame: pd.DataFrame, numeric: list[str]) -> tuple[np.ndarray, bool]:
        """The numeric features as floats, and whether any column had to be converted; names the
        first field that is not a number."""
        block = frame[numeric]
        if all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in block.dtypes):
            return block.to_numpy(dtype=float), False
        for name in numeric:  # slow path: a null, a boolean or a bad value somewhere; name the culprit
            original = frame[name]
            converted = pd.to_numeric(original, errors="coerce")
            not_numbers = converted.isna() & original.notna()
            if not_numbers.any() or pd.api.types.is_bool_dtype(original):
                culprit = original[not_numbers]
                shown = culprit.iloc[0] if len(culprit) else original.iloc[0]
                raise BadRequest(f"{name}: expected a finite number, got {shown!r}")
        return block.apply(pd.to_numeric).to_numpy(dtype=float), True

    @cached_property
    def _non_negative_mask(self) -> np.ndarray:
        allowed = self.usecase.non_negative_features()
        return np.array([name in allowed for name in self.bundle.encoder.numeric], dtype=bool)

    @cached_property
    def _nullable(self) -> set[str]:
        return self.usecase.nullable_features()

    @cached_property
    def _nullable_numeric(self) -> np.ndarray:
        return np.array([name in self._nullable for name in self.bundle.encoder.numeric], dtype=bool)

    @cached_property
    def _vocabularies(self) -> dict[str, set[str] | None]:
        """Allowed values per categorical feature; None for an open category (unseen values are 'other')."""
        columns = self.usecase.dataset.columns
        return {
            name: None if columns[name].open else set(vocab)
            for name, vocab in self.bundle.encoder.categorical.items()
        }

    @property
    def prediction_field(self) -> str:
        return self.usecase.prediction_field

    def predict(self, body: bytes, content_type: str) -> tuple[pd.DataFrame, list[float]]:
        """The validated rows (with their feature sources in `attrs`) and the model's answers."""
        frame, numeric = self._validated(parse_body(body, content_type))
        return frame, self.bundle.predict_validated(numeric, frame).tolist()

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Batch inference over a file or lake table already loaded as a frame."""
        return self.bundle.predict(self.validate(frame.copy()))


def response_body(
    scores: list[float],
    accept: str,
    field: str = "prediction",
    sources: dict[str, list[str]] | None = None,
) -> tuple[bytes, str]:
    """The answer as CSV (one value per line) or JSON ({"predictions": [{field: value}], "feature_sources": ...})."""
    if "text/csv" in accept:
        return ("\n".join(f"{s:.6f}" for s in scores) + "\n").encode(), "text/csv"
    payload: dict[str, Any] = {"predictions": [{field: s} for s in scores]}
    if sources is not None:
        payload[SOURCES] = sources
    return json.dumps(payload).encode(), "application/json"


def source_headers(sources: dict[str, list[str]] | None) -> dict[str, str]:
    """The feature sources as response headers too (a CSV answer has no room for them)."""
    if not sources:
        return {}
    headers = {}
    if sources.get("online_store"):
        headers["X-Features-From-Store"] = _header_text(sources["online_store"])
    if sources.get("ignored"):
        headers["X-Ignored-Fields"] = _header_text(sources["ignored"])
    return headers


def _header_text(names: list[str]) -> str:
    """Names a client chose, made safe for a header: printable ASCII only, bounded."""
    text = ",".join(names)
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)[:2000]
