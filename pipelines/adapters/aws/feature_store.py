"""The online store on SageMaker Feature Store: PutRecord per entity, BatchGetRecord for lookups.

Feature group names are `<prefix><view with - for _>` (as `infra/` creates them). Values travel as
strings; they are typed back with the feature group's own definitions. Throttled writes are
retried with exponential backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from botocore.exceptions import ClientError

from pipelines.adapters.aws.session import client
from pipelines.features.compute import FEATURE_TIME

BATCH_GET_LIMIT = 100
THROTTLING = {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "Throttling"}
_CAST: dict[str, Callable[[str], object]] = {"Integral": int, "Fractional": float, "String": str}


def _as_string(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


class SageMakerOnlineStore:
    """OnlineStorePort on SageMaker Feature Store's online store."""

    def __init__(
        self,
        feature_group_prefix: str,
        runtime: Any | None = None,
        control: Any | None = None,
        attempts: int = 6,
        sleep: Callable[[float], None] = time.sleep,
        batch_size: int = 500,
        workers: int = 4,
    ) -> None:
        self.prefix = feature_group_prefix
        self.runtime = runtime or client("sagemaker-featurestore-runtime")
        self.control = control or client("sagemaker")
        self.attempts, self.sleep = attempts, sleep
        self.batch_size, self.workers = batch_size, workers
        self._types = cache(self._feature_types)

    def group(self, view: str) -> str:
        return f"{self.prefix}{view.replace('_', '-')}"

    def _feature_types(self, view: str) -> dict[str, str]:
        described = self.control.describe_feature_group(FeatureGroupName=self.group(view))
        return {d["FeatureName"]: d["FeatureType"] for d in described["FeatureDefinitions"]}

    def _put(self, group: str, record: list[dict[str, str]]) -> None:
        delay = 0.2
        for attempt in range(self.attempts):
            try:
                self.runtime.put_record(FeatureGroupName=group, Record=record)
                return
            except ClientError as exc:
                if (
                    exc.response.get("Error", {}).get("Code") not in THROTTLING
                    or attempt == self.attempts - 1
                ):
                    raise
                self.sleep(delay)
                delay = min(delay * 2, 5.0)

    def write(self, view: str, rows: pd.DataFrame, entity_key: str) -> int:
        """PutRecord for every row, in batches of `batch_size` rows spread over `workers` threads."""
        group = self.group(view)
        records = [
            [
                {"FeatureName": str(name), "ValueAsString": text}
                for name, value in row.items()
                if (text := _as_string(value)) is not None
            ]
            for row in rows.to_dict(orient="records")
        ]
        batches = [
            records[start : start + self.batch_size] for start in range(0, len(records), self.batch_size)
        ]

        def put_batch(batch: list[list[dict[str, str]]]) -> int:
            for record in batch:
                self._put(group, record)
            return len(batch)

        if self.workers <= 1 or len(batches) <= 1:
            return sum(put_batch(b) for b in batches)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return sum(pool.map(put_batch, batches))

    def read(self, view: str, keys: Sequence[str], entity_key: str) -> pd.DataFrame:
        """Rows in the order of `keys`; unknown keys are absent."""
        types = self._types(view)
        found: dict[str, dict[str, object]] = {}
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            chunk = [str(k) for k in keys[start : start + BATCH_GET_LIMIT]]
            response = self.runtime.batch_get_record(
                Identifiers=[{"FeatureGroupName": self.group(view), "RecordIdentifiersValueAsString": chunk}]
            )
            for item in response.get("Records", []):
                values = {
                    f["FeatureName"]: _CAST[types.get(f["FeatureName"], "String")](f["ValueAsString"])
                    for f in item["Record"]
                }
                values[FEATURE_TIME] = pd.Timestamp(str(values[FEATURE_TIME]))
                found[str(item["RecordIdentifierValueAsString"])] = values
        return pd.DataFrame([found[str(k)] for k in keys if str(k) in found])
