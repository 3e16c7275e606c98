"""SageMaker's data capture, loaded into the lake's capture table (the one the local endpoint fills).

SageMaker writes each sampled request and response as one JSON line, in files under
`<DestinationS3Uri>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/<name>.jsonl`, each record
`{"captureData": {"endpointInput": {"observedContentType", "mode", "data", "encoding"},
"endpointOutput": {...}}, "eventMetadata": {"eventId", "inferenceId"?, "inferenceTime"},
"eventVersion"}` (AWS, "Capture data from real-time endpoint" in the SageMaker developer guide;
`encoding` is JSON, CSV or BASE64).

Each file is loaded once: its rows carry the file's key (`capture_file`), committed with them, so a
sync that died half-way is finished by the next and never doubled. Files can land late (each
instance uploads its own), so a sync lists from `lateness` before the newest hour already loaded.
A record that cannot be read is counted and named, never silently dropped.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from mlops.contract import AwsServing
from pipelines.adapters.aws.session import client
from pipelines.ports import CaptureSchema, CaptureSync, LakePort, RowFilter
from pipelines.serving.capture import EVENT_TIME, CapturedRequest, capture_arrow, capture_table
from pipelines.serving.handler import MODEL_VERSION_FIELD, BadRequest, as_text, parse_body

log = logging.getLogger(__name__)

CAPTURE_FILE = "capture_file"  # the S3 key a row was loaded from
LOADED_UNTIL = "mlops.capture.loaded_until"  # snapshot property: the newest file hour loaded
VERSION_ENV = "MLOPS_MODEL_VERSION"  # what the deployer tells each variant's container
MAX_ERRORS = 20


class CaptureRecordError(ValueError):
    """A capture record this loader cannot turn into rows."""


def _hour_of(key: str) -> datetime | None:
    """The hour a capture file's key names (`.../yyyy/mm/dd/hh/name.jsonl`), if it names one."""
    parts = key.split("/")
    try:
        year, month, day, hour = (int(p) for p in parts[-5:-1])
        return datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return None


def _body(section: dict[str, Any], side: str) -> tuple[bytes, str]:
    try:
        data, encoding = section["data"], str(section.get("encoding", "")).upper()
    except (KeyError, TypeError):
        raise CaptureRecordError(f"captureData.{side}: no data") from None
    raw = base64.b64decode(data) if encoding == "BASE64" else str(data).encode()
    return raw, str(section.get("observedContentType", "application/json"))


def _scores(body: bytes, content_type: str) -> tuple[list[float], str]:
    """The answer's scores and, when it says, the model version that gave them."""
    if "csv" in content_type.lower():
        try:
            return [float(line) for line in body.decode().split() if line], ""
        except ValueError as exc:
            raise CaptureRecordError(f"endpointOutput: not one number per line ({exc})") from None
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CaptureRecordError(f"endpointOutput: not JSON ({exc})") from None
    version = str(payload.get(MODEL_VERSION_FIELD, "")) if isinstance(payload, dict) else ""
    predictions = payload.get("predictions") if isinstance(payload, dict) else payload
    if not isinstance(predictions, list):
        raise CaptureRecordError('endpointOutput: no "predictions" list')
    scores = []
    for item in predictions:
        value = next(iter(item.values()), None) if isinstance(item, dict) else item
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise CaptureRecordError(f"endpointOutput: prediction {item!r} is not a number")
        scores.append(float(value))
    return scores, version


def _numbers(values: list[Any]) -> list[float]:
    out = []
    for value in values:
        try:
            number = float(value) if value is not None and value != "" else math.nan
        except (TypeError, ValueError):
            number = math.nan
        out.append(number)
    return out


def request_rows(
    record: dict[str, Any], schema: CaptureSchema, version_of: Callable[[str], str], variant: str
) -> CapturedRequest:
    """One capture record as the rows the local endpoint would have captured for it; `version_of`
    names a variant's model version when the answer does not carry it (CSV answers)."""
    try:
        data, metadata = record["captureData"], record.get("eventMetadata", {})
        request_body, request_type = _body(data["endpointInput"], "endpointInput")
        answer_body, answer_type = _body(data["endpointOutput"], "endpointOutput")
    except (KeyError, TypeError):
        raise CaptureRecordError("no captureData.endpointInput and endpointOutput") from None
    try:
        rows = parse_body(request_body, request_type)
    except BadRequest as exc:
        raise CaptureRecordError(f"endpointInput: {exc}") from None
    scores, version = _scores(answer_body, answer_type)
    if len(scores) != rows.size:
        raise CaptureRecordError(f"{rows.size} rows in the request, {len(scores)} predictions in the answer")
    version = version or version_of(variant)
    if not version:
        raise CaptureRecordError(f"variant {variant!r}: no model version in the answer or the endpoint")
    try:
        captured_at = pd.Timestamp(metadata["inferenceTime"]).tz_convert(UTC).to_pydatetime()
    except (KeyError, ValueError, TypeError):
        raise CaptureRecordError("eventMetadata.inferenceTime: missing or not a time") from None
    sent = rows.columns
    columns: dict[str, Any] = {}
    if schema.entity_key in sent:
        columns[schema.entity_key] = as_text(sent[schema.entity_key])
    for name in schema.numeric:
        columns[name] = _numbers(sent.get(name, [None] * rows.size))
    for name in schema.categorical:
        columns[name] = as_text(sent.get(name, [None] * rows.size))
    if schema.event_time in sent:
        columns[EVENT_TIME] = as_text(sent[schema.event_time])
    known = {schema.entity_key, schema.event_time, *schema.numeric, *schema.categorical}
    request_id = str(metadata.get("inferenceId") or metadata.get("eventId") or "")
    if not request_id:
        raise CaptureRecordError("eventMetadata: no eventId")
    return CapturedRequest(
        f"v{version}",
        columns,
        scores,
        sum(name not in known for name in sent),
        captured_at,
        version,
        request_id,
    )


@dataclass
class _Loaded:
    frames: list[pd.DataFrame] = field(default_factory=list)
    rows: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def refuse(self, where: str, error: Exception) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(f"{where}: {error}")


class SageMakerCaptureLoader:
    """CaptureSourcePort on SageMaker: the endpoint's capture files in S3, loaded into the lake."""

    def __init__(
        self,
        serving: AwsServing,
        lake: LakePort,
        s3: Any | None = None,
        sagemaker: Any | None = None,
        lateness: timedelta = timedelta(hours=2),
        files_per_commit: int = 500,
        region: str | None = None,
    ) -> None:
        location = serving.data_capture_uri.split("://", 1)[-1]
        self.bucket, _, prefix = location.partition("/")
        self.root = "/".join(p for p in (prefix.strip("/"), serving.endpoint_name) if p) + "/"
        self.serving, self.lake = serving, lake
        self._s3, self._sagemaker, self.region = s3, sagemaker, region
        self.lateness, self.files_per_commit = lateness, files_per_commit

    @property
    def s3(self) -> Any:
        if self._s3 is None:  # made when first used: connecting a platform stays cheap
            self._s3 = client("s3", self.region)
        return self._s3

    @property
    def sagemaker(self) -> Any:
        if self._sagemaker is None:
            self._sagemaker = client("sagemaker", self.region)
        return self._sagemaker

    def sync(self, model_name: str, schema: CaptureSchema) -> CaptureSync:
        """Load the capture files no sync has loaded yet, oldest hour first, in a few commits."""
        table = capture_table(model_name)
        newest = self._loaded_until(table)
        start = newest - self.lateness if newest else None
        loaded = self._loaded_files(table, start)
        listed = sorted(
            self._listed(start), key=lambda key: (_hour_of(key) or datetime.min.replace(tzinfo=UTC), key)
        )
        fresh = [key for key in listed if key not in loaded]
        versions = functools.cache(self._variant_versions)  # asked once, only if an answer lacks it

        def version_of(variant: str) -> str:
            return versions().get(variant, "")

        total = _Loaded()
        for first in range(0, len(fresh), self.files_per_commit):
            group, batch = fresh[first : first + self.files_per_commit], _Loaded()
            for key in group:
                variant = key[len(self.root) :].split("/", 1)[0]
                for number, record in self._records(key, batch):
                    try:
                        request = request_rows(record, schema, version_of, variant)
                    except CaptureRecordError as exc:
                        batch.refuse(f"s3://{self.bucket}/{key} line {number}", exc)
                        continue
                    frame = request.frame()
                    frame[CAPTURE_FILE] = key
                    batch.frames.append(frame)
            if batch.frames:
                rows = capture_arrow(pd.concat(batch.frames, ignore_index=True))
                hours = [h for h in map(_hour_of, group) if h is not None]
                properties = {"mlops.capture": "sagemaker", "mlops.capture.files": str(len(group))}
                if hours:
                    properties[LOADED_UNTIL] = max([*hours, *([newest] if newest else [])]).isoformat()
                self.lake.append(table, rows, properties)
                batch.rows = rows.num_rows
            total.rows += batch.rows
            total.rejected += batch.rejected
            total.errors += batch.errors[: MAX_ERRORS - len(total.errors)]
        for line in total.errors:
            log.warning("capture record refused: %s", line)
        return CaptureSync(len(fresh), total.rows, total.rejected, len(listed) - len(fresh), total.errors)

    def _records(self, key: str, loaded: _Loaded) -> Iterator[tuple[int, dict[str, Any]]]:
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        for number, line in enumerate(body.decode("utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                loaded.refuse(
                    f"s3://{self.bucket}/{key} line {number}", CaptureRecordError(f"not JSON ({exc})")
                )
                continue
            if not isinstance(record, dict):
                loaded.refuse(
                    f"s3://{self.bucket}/{key} line {number}", CaptureRecordError("not a JSON object")
                )
                continue
            yield number, record

    def _loaded_until(self, table: str) -> datetime | None:
        if self.lake.current_snapshot(table) is None:
            return None
        for snapshot in reversed(self.lake.history(table)):
            if LOADED_UNTIL in snapshot.properties:
                return datetime.fromisoformat(snapshot.properties[LOADED_UNTIL])
        return None

    def _loaded_files(self, table: str, start: datetime | None) -> set[str]:
        """Keys loaded since an hour before `start` (the records of hour H's files are of hour H)."""
        if self.lake.current_snapshot(table) is None or CAPTURE_FILE not in self.lake.schema(table).names:
            return set()
        where = RowFilter(at_least={"captured_at": start - timedelta(hours=1)}) if start else None
        column = self.lake.read(table, columns=[CAPTURE_FILE], where=where).column(0)
        return {key for key in column.to_pylist() if key}

    def _listed(self, start: datetime | None) -> Iterator[str]:
        """Every capture file of every variant, from `start`'s hour on (all of them without one)."""
        paginator = self.s3.get_paginator("list_objects_v2")
        variants = [
            common["Prefix"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.root, Delimiter="/")
            for common in page.get("CommonPrefixes", [])
        ]
        for variant in variants:
            after = {"StartAfter": f"{variant}{start:%Y/%m/%d/%H}"} if start else {}
            for page in paginator.paginate(Bucket=self.bucket, Prefix=variant, **after):
                for item in page.get("Contents", []):
                    if item["Key"].endswith(".jsonl"):
                        yield item["Key"]

    def _variant_versions(self) -> dict[str, str]:
        """Each live variant's model version, for answers that do not carry it (CSV)."""
        try:
            endpoint = self.sagemaker.describe_endpoint(EndpointName=self.serving.endpoint_name)
            config = self.sagemaker.describe_endpoint_config(
                EndpointConfigName=endpoint["EndpointConfigName"]
            )
        except self.sagemaker.exceptions.ClientError:
            return {}
        versions = {}
        for variant in config["ProductionVariants"]:
            model = self.sagemaker.describe_model(ModelName=variant["ModelName"])
            version = model.get("PrimaryContainer", {}).get("Environment", {}).get(VERSION_ENV)
            if version:
                versions[variant["VariantName"]] = str(version)
        return versions
