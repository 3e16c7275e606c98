"""The feature store: offline feature tables in the lake (Iceberg), the online store behind its port.

Offline tables are versioned like every lake table, so a training set is reproducible from the
snapshot id recorded in the model's lineage. Training sets use point-in-time joins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.features.compute import FEATURE_TIME, point_in_time_join
from pipelines.ports import LakePort, OnlineStorePort, Snapshot
from pipelines.usecase import FeatureViewSpec

if TYPE_CHECKING:
    import pyarrow as pa

SOURCE_PROPERTY = "mlops.source-snapshot"


@dataclass(frozen=True)
class FeatureStore:
    lake: LakePort
    online_store: OnlineStorePort
    namespace: str

    def offline_table(self, view: FeatureViewSpec) -> str:
        return f"{self.namespace}.{view.name}"

    def current_for(self, view: FeatureViewSpec, source_snapshot_id: int) -> Snapshot | None:
        """The offline snapshot built from `source_snapshot_id`, if the latest one is."""
        current = self.lake.current_snapshot(self.offline_table(view))
        if current is not None and current.properties.get(SOURCE_PROPERTY) == str(source_snapshot_id):
            return current
        return None

    def write_offline(
        self, view: FeatureViewSpec, features: pd.DataFrame | pa.Table, source_snapshot_id: int
    ) -> Snapshot:
        """Replace the view's offline table with `features`, recording the source snapshot it came from."""
        import pyarrow as pa

        table = (
            features
            if isinstance(features, pa.Table)
            else pa.Table.from_pandas(features, preserve_index=False)
        )
        return self.lake.overwrite(
            self.offline_table(view), table, {SOURCE_PROPERTY: str(source_snapshot_id)}
        )

    def write_offline_stream(
        self, view: FeatureViewSpec, batches: pa.RecordBatchReader, source_snapshot_id: int, entity_key: str
    ) -> tuple[Snapshot, int, pa.Table]:
        """Replace the view's offline table with a stream of feature rows (in any order), one batch in
        memory at a time; returns the snapshot, the rows written, and each entity's latest row, gathered
        on the way for `materialize`."""
        latest = LatestRows(entity_key)
        snapshot = self.lake.overwrite_batches(
            self.offline_table(view),
            (latest.add(batch) for batch in batches),
            {SOURCE_PROPERTY: str(source_snapshot_id)},
        )
        return snapshot, latest.rows, latest.table(batches.schema)

    def latest_offline(self, view: FeatureViewSpec, snapshot_id: int, entity_key: str) -> pa.Table:
        """Each entity's latest row of an offline snapshot, read one data file at a time."""
        latest = LatestRows(entity_key)
        rows = self.lake.scan(self.offline_table(view), snapshot_id=snapshot_id)
        for batch in rows:
            latest.add(batch)
        return latest.table(rows.schema)

    def source_of_current(self, view: FeatureViewSpec) -> int | None:
        """The curated snapshot the view's current offline snapshot was built from, if known."""
        current = self.lake.current_snapshot(self.offline_table(view))
        source = current.properties.get(SOURCE_PROPERTY, "") if current is not None else ""
        return int(source) if source.lstrip("-").isdigit() else None

    def append_offline(
        self, view: FeatureViewSpec, features: pd.DataFrame, source_snapshot_id: int
    ) -> Snapshot:
        """Append feature rows of new events (typed as the table is), recording the source snapshot."""
        import pyarrow as pa

        table = self.offline_table(view)
        schema = self.lake.schema(table)
        rows = pa.Table.from_pandas(features[schema.names], preserve_index=False)
        return self.lake.append(table, rows.cast(schema), {SOURCE_PROPERTY: str(source_snapshot_id)})

    def read_offline(self, view: FeatureViewSpec, snapshot_id: int | None = None) -> pd.DataFrame:
        return self.lake.read(self.offline_table(view), snapshot_id=snapshot_id).to_pandas()

    def training_set(
        self,
        view: FeatureViewSpec,
        spine: pd.DataFrame,
        entity_key: str,
        timestamp: str,
        snapshot_id: int | None = None,
    ) -> pd.DataFrame:
        """Spine rows with the view's features as of each row's timestamp (no future leakage)."""
        features = self.read_offline(view, snapshot_id)
        return point_in_time_join(spine, features, entity_key, timestamp, view.ttl_days)

    def materialize(self, view: FeatureViewSpec, features: pd.DataFrame | pa.Table, entity_key: str) -> int:
        """Push each entity's latest feature row to the online store."""
        import pyarrow as pa

        if isinstance(features, pa.Table):
            latest = _latest_rows(features, entity_key)
        else:
            latest = features.sort_values(FEATURE_TIME, kind="stable").drop_duplicates(
                entity_key, keep="last"
            )
        return self.online_store.write(view.name, latest, entity_key)

    def online(self, view: FeatureViewSpec, keys: list[str], entity_key: str) -> pd.DataFrame:
        return self.online_store.read(view.name, keys, entity_key)


class LatestRows:
    """Each entity's latest feature row over a stream of batches in any order: memory follows the
    number of entities, not of rows."""

    def __init__(self, entity_key: str) -> None:
        self.entity_key, self.rows = entity_key, 0
        self._kept: pa.Table | None = None

    def add(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Take `batch` into account and pass it on."""
        import pyarrow as pa

        self.rows += batch.num_rows
        rows = pa.Table.from_batches([batch])
        combined = rows if self._kept is None else pa.concat_tables([self._kept, rows])
        order = [(self.entity_key, "ascending"), (FEATURE_TIME, "ascending")]
        self._kept = _last_of_each(combined.sort_by(order), self.entity_key)
        return batch

    def table(self, schema: pa.Schema) -> pa.Table:
        """The latest rows, ordered by entity (empty, with `schema`, when no row was seen)."""
        return self._kept if self._kept is not None else schema.empty_table()


def _last_of_each(features: pa.Table, entity_key: str) -> pa.Table:
    """Each entity's last row of a table ordered by (entity, feature time)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = features.column(entity_key)
    if len(keys) == 0:
        return features
    changes = pc.not_equal(keys.slice(0, len(keys) - 1), keys.slice(1)).to_numpy(zero_copy_only=False)
    last = np.append(np.flatnonzero(changes), len(keys) - 1)
    return features.take(pa.array(last))


def _latest_rows(features: pa.Table, entity_key: str) -> pd.DataFrame:
    """Each entity's last row of a table ordered by (entity, feature time), as pandas (one per entity)."""
    return _last_of_each(features, entity_key).to_pandas()
