"""The lake port over Apache Iceberg (pyiceberg): one implementation, any catalog.

Locally the catalog is SQLite (SqlCatalog) over a warehouse directory; in AWS it is Glue over S3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot as IcebergSnapshot

from pipelines.ports import Snapshot

# Iceberg stores microseconds; pandas hands us nanoseconds by default.
_TIMESTAMP_US_UTC = pa.timestamp("us", tz="UTC")


def _normalise(data: pa.Table) -> pa.Table:
    """Cast timestamps to microseconds UTC and large strings to strings, as Iceberg stores them."""
    fields = []
    for f in data.schema:
        if pa.types.is_timestamp(f.type):
            fields.append(pa.field(f.name, _TIMESTAMP_US_UTC, f.nullable))
        elif pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type):
            fields.append(pa.field(f.name, pa.string(), f.nullable))
        else:
            fields.append(f)
    return data.cast(pa.schema(fields))


class IcebergLake:
    """LakePort implemented with pyiceberg; table names are `namespace.table`."""

    def __init__(
        self,
        catalog: Catalog,
        table_properties: dict[str, str] | None = None,
        identifier: Callable[[str], str] | None = None,
        location: Callable[[str], str] | None = None,
    ) -> None:
        """`identifier` maps a lake table name (`raw.events`) to the catalog's identifier, and
        `location` to where its files live; by default both follow the catalog's own layout."""
        self.catalog = catalog
        self.table_properties = table_properties or {}
        self.identifier = identifier or (lambda name: name)
        self.location = location

    def _table(self, name: str) -> Table | None:
        try:
            return self.catalog.load_table(self.identifier(name))
        except NoSuchTableError:
            return None

    def _create(self, name: str, schema: pa.Schema) -> Table:
        identifier = self.identifier(name)
        self.catalog.create_namespace_if_not_exists(identifier.rsplit(".", 1)[0])
        return self.catalog.create_table_if_not_exists(
            identifier,
            schema=schema,
            location=self.location(name) if self.location else None,
            properties=self.table_properties,
        )

    @staticmethod
    def _to_snapshot(table: str, snap: IcebergSnapshot) -> Snapshot:
        summary = snap.summary.additional_properties if snap.summary else {}
        return Snapshot(
            table=table,
            snapshot_id=snap.snapshot_id,
            committed_at=datetime.fromtimestamp(snap.timestamp_ms / 1000, tz=UTC),
            properties=dict(summary),
        )

    def _committed(self, name: str, table: Table) -> Snapshot:
        table.refresh()
        snap = table.current_snapshot()
        if snap is None:  # pragma: no cover - a commit always leaves a snapshot
            raise RuntimeError(f"table {name} has no snapshot after a commit")
        return self._to_snapshot(name, snap)

    def append(self, table: str, data: pa.Table, properties: dict[str, str]) -> Snapshot:
        """Append rows as one snapshot carrying `properties` in its summary."""
        data = _normalise(data)
        target = self._table(table) or self._create(table, data.schema)
        target.append(data, snapshot_properties=properties)
        return self._committed(table, target)

    def overwrite(self, table: str, data: pa.Table, properties: dict[str, str]) -> Snapshot:
        """Replace the table's rows in one snapshot (older snapshots stay readable)."""
        data = _normalise(data)
        target = self._table(table) or self._create(table, data.schema)
        target.overwrite(data, snapshot_properties=properties)
        return self._committed(table, target)

    def read(
        self, table: str, columns: Sequence[str] | None = None, snapshot_id: int | None = None
    ) -> pa.Table:
        """Read a table (optionally some columns, optionally as of a snapshot)."""
        source = self._table(table)
        if source is None:
            raise KeyError(f"lake table {table} does not exist")
        fields = tuple(columns) if columns else ("*",)
        return source.scan(selected_fields=fields, snapshot_id=snapshot_id).to_arrow()

    def current_snapshot(self, table: str) -> Snapshot | None:
        source = self._table(table)
        snap = source.current_snapshot() if source is not None else None
        return self._to_snapshot(table, snap) if snap is not None else None

    def snapshots(self, table: str) -> list[Snapshot]:
        source = self._table(table)
        return [self._to_snapshot(table, s) for s in source.snapshots()] if source is not None else []
