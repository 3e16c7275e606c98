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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import orjson
import pandas as pd

from models.bundle import ModelBundle
from pipelines.ports import OnlineStorePort
from pipelines.usecase import UseCase

MAX_ROWS = 10_000
MODEL_VERSION_FIELD = "model_version"  # in JSON answers
CAPTURED_EVENT_TIME = "event_time"  # the capture table's column, whatever the use case calls it
SOURCES = "feature_sources"  # the answer's key: {"request": [...], "online_store": [...], "ignored": [...]}


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
    """JSON with its nesting, integer size and text validity bounded: every malformed body is a 4xx.

    orjson reads well-formed bodies (it refuses lone surrogates, NaN, overflowing numbers and
    nesting past 1,024 levels by itself, and rows are checked to be flat afterwards); anything it
    refuses is read again by the standard parser with explicit bounds, whose error names the problem.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    check_nesting(body)
    try:
        return json.loads(body, parse_int=_bounded_int, object_pairs_hook=_no_surrogates)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    except RecursionError:
        raise BadRequest(f"JSON nested deeper than {MAX_DEPTH} levels") from None


@dataclass
class RequestRows:
    """A request's rows by field: each field's values, one per row (None where a row left it out)."""

    columns: dict[str, list[Any]]
    size: int

    @classmethod
    def of_frame(cls, frame: pd.DataFrame) -> RequestRows:
        return cls({str(name): frame[name].tolist() for name in frame.columns}, len(frame))


@dataclass
class ValidatedRows:
    """What the model scores: the numeric features as one float block (encoder order), each
    categorical feature as a list, the entity keys when sent, and where each feature came from."""

    numeric: np.ndarray
    categorical: dict[str, list[Any]]
    keys: list[Any] | None
    sources: dict[str, list[str]]
    event_times: list[Any] | None = None  # the use case's event time, when the request sent it

    @property
    def size(self) -> int:
        return len(self.numeric)


def parse_body(body: bytes, content_type: str) -> RequestRows:
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
        fields = dict.fromkeys(name for row in payload for name in row)
        return RequestRows({name: [row.get(name) for row in payload] for name in fields}, len(payload))
    if kind == "text/csv":
        try:
            frame = pd.read_csv(io.BytesIO(body), keep_default_na=False, na_values=[""])
        except Exception as exc:
            raise BadRequest(f"body is not valid CSV with a header row: {exc}") from exc
        return RequestRows.of_frame(frame)
    raise BadRequest(
        f"unsupported content type {content_type!r} (use application/json or text/csv)", status=415
    )


def numbers(name: str, values: list[Any]) -> np.ndarray:
    """A field's values as floats (null becomes NaN, numeric text is read as a number); names the
    first value that is not a number. Booleans are not numbers here."""
    if all(type(v) is float or type(v) is int for v in values):
        return np.array(values, dtype=np.float64)
    out = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values):
        if _is_null(value):
            out[row] = np.nan
        elif _is_number(value):
            out[row] = float(value)
        else:
            raise BadRequest(f"{name}: expected a finite number, got {value!r}")
    return out


def _is_number(value: Any) -> bool:
    """A real number, or text that reads as one (as CSV cells and some clients send them)."""
    if isinstance(value, str):
        return _NUMBER.fullmatch(value.strip()) is not None
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan)", re.IGNORECASE)


class Scorer(Protocol):
    def predict_arrays(
        self, numeric: np.ndarray, categorical: Mapping[str, Sequence[object]]
    ) -> np.ndarray: ...


@dataclass
class InferenceHandler:
    bundle: ModelBundle
    usecase: UseCase
    online_store: OnlineStorePort | None = None
    scorer: Scorer | None = None  # the model's ONNX file when it has one (see pipelines/onnx_model.py)

    @property
    def _scorer(self) -> Scorer:
        return self.scorer if self.scorer is not None else self.bundle

    @property
    def entity_key(self) -> str:
        return self.usecase.dataset.entity_key

    def _fill_from_online_store(self, rows: RequestRows, wanted: list[str]) -> None:
        """Add the `wanted` features to `rows`, read from the online store by entity key."""
        if self.online_store is None:
            raise BadRequest(
                f"missing field(s): {', '.join(wanted)} (this endpoint has no online store to fill them)"
            )
        if any(_is_null(k) for k in rows.columns[self.entity_key]):
            raise BadRequest(f"{self.entity_key}: a row without its key cannot use the online store")
        keys = [str(k) for k in rows.columns[self.entity_key]]
        found = self.online_store.read(self.usecase.features.name, keys, self.entity_key)
        stored = (
            found.drop_duplicates(self.entity_key, keep="last").set_index(self.entity_key)[wanted]
            if not found.empty
            else pd.DataFrame(columns=wanted)
        )
        missing = [k for k in keys if k not in stored.index]
        if missing:
            raise BadRequest(f"{self.entity_key}: no online features for {missing[:5]}", status=404)
        looked_up = stored.loc[keys]
        for name in wanted:
            rows.columns[name] = looked_up[name].tolist()
        rows.columns[self.entity_key] = keys

    def validate(self, rows: RequestRows) -> ValidatedRows:
        """The model's inputs, checked against the use case's types, ranges, sets and nullability.

        The result records which features came from the request and which from the online store,
        and which fields were ignored.
        """
        if rows.size == 0:
            raise BadRequest("request has no rows")
        if rows.size > MAX_ROWS:
            raise BadRequest(f"request has {rows.size} rows; at most {MAX_ROWS} per call", status=413)
        features = self.bundle.feature_names
        sent = [f for f in features if f in rows.columns]
        ignored = [name for name in rows.columns if name not in self._feature_set and name != self.entity_key]
        absent = [f for f in features if f not in rows.columns]
        if absent and self.entity_key not in rows.columns:
            raise BadRequest(
                f"missing field(s): {', '.join(absent)} (or send {self.entity_key!r} to read them from the online store)"
            )
        if absent:
            self._fill_from_online_store(rows, absent)
        numeric = self.bundle.encoder.numeric
        values = np.empty((rows.size, len(numeric)), dtype=np.float64)
        for position, name in enumerate(numeric):
            values[:, position] = numbers(name, rows.columns[name])
        bad = np.isinf(values) | (np.isnan(values) & ~self._nullable_numeric)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            shown = rows.columns[numeric[col]][row]
            raise BadRequest(f"{numeric[col]}: expected a finite number, got {shown!r}")
        negative = (values < 0) & self._non_negative_mask
        if negative.any():
            row, col = np.argwhere(negative)[0]
            raise BadRequest(f"{numeric[col]}: must not be negative, got {values[row, col]:g}")
        for name, allowed in self._vocabularies.items():
            self._check_category(name, rows.columns[name], allowed)
        return ValidatedRows(
            values,
            {name: rows.columns[name] for name in self._vocabularies},
            rows.columns.get(self.entity_key),
            {"request": sent, "online_store": absent, "ignored": ignored},
            rows.columns.get(self.usecase.dataset.event_time),
        )

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

    @cached_property
    def _feature_set(self) -> set[str]:
        return set(self.bundle.feature_names)

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

    def score(self, rows: ValidatedRows) -> list[float]:
        return self._scorer.predict_arrays(rows.numeric, rows.categorical).tolist()

    def predict(self, body: bytes, content_type: str) -> tuple[ValidatedRows, list[float]]:
        """The validated rows (with their feature sources) and the model's answers."""
        return self.predict_rows(parse_body(body, content_type))

    def predict_rows(self, parsed: RequestRows) -> tuple[ValidatedRows, list[float]]:
        """`predict` of a body already parsed."""
        rows = self.validate(parsed)
        return rows, self.score(rows)

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Scoring of rows already loaded as a frame (the deployment's smoke test), with the same checks."""
        rows = self.validate(RequestRows.of_frame(frame))
        return self._scorer.predict_arrays(rows.numeric, rows.categorical)

    def captured(self, rows: ValidatedRows) -> dict[str, Any]:
        """What data capture keeps of validated rows: the entity key and the model's inputs, typed
        as the capture table stores them (numbers as floats, keys and categories as text), whatever
        JSON types a client used."""
        columns: dict[str, Any] = {}
        if rows.keys is not None:
            columns[self.entity_key] = as_text(rows.keys)
        for position, name in enumerate(self.bundle.encoder.numeric):
            columns[name] = rows.numeric[:, position]
        for name, values in rows.categorical.items():
            columns[name] = as_text(values)
        if rows.event_times is not None:  # what the quality flow matches labels by
            columns[CAPTURED_EVENT_TIME] = as_text(rows.event_times)
        return columns


def as_text(values: Sequence[Any]) -> list[str | None]:
    """Values as the capture table stores text: strings as sent, others as their text, nulls null."""
    return [None if _is_null(v) else v if isinstance(v, str) else str(v) for v in values]


def response_body(
    scores: list[float],
    accept: str,
    field: str = "prediction",
    sources: dict[str, list[str]] | None = None,
    explanation: dict[str, Any] | None = None,
    model_version: str = "",
) -> tuple[bytes, str]:
    """The answer as CSV (one value per line) or JSON ({"predictions": [{field: value}],
    "model_version": ..., "feature_sources": ..., "explanation": ... when asked for}).

    The version travels in the body so that SageMaker's data capture, which keeps bodies and not
    headers, records which version answered."""
    if "text/csv" in accept:
        return ("\n".join(f"{s:.6f}" for s in scores) + "\n").encode(), "text/csv"
    payload: dict[str, Any] = {"predictions": [{field: s} for s in scores]}
    if model_version:
        payload[MODEL_VERSION_FIELD] = model_version
    if sources is not None:
        payload[SOURCES] = sources
    if explanation is not None:
        payload["explanation"] = explanation
    return orjson.dumps(payload), "application/json"


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
