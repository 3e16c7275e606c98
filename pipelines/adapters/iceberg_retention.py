"""Snapshot retention for Iceberg tables, with a ledger of what expired.

Every commit adds a snapshot, and an Iceberg table's metadata lists every snapshot it keeps: the
metadata file written at each commit, and the copy pyiceberg makes of it each time a transaction reads
it, grow with the table's age (after 100 daily runs, a run took 0.84 s against 0.64 s once the old
snapshots were gone). Old snapshots are expired by Iceberg's own retention properties, the ones Spark's
and Athena's maintenance read too: a snapshot older than `history.expire.max-snapshot-age-ms` goes,
unless it is among the newest `history.expire.min-snapshots-to-keep` or a tag or branch holds it.

Runs find what they did earlier by their snapshots' properties (a batch's id, a prediction run's model
version and input). An expired snapshot can no longer be read, but its record must still answer that
question, so the same commit that expires snapshots points the table at a ledger file holding every
expired snapshot's id, time and properties. The ledger file is written before that commit: a run
killed in between leaves an unreferenced file and the table as it was.

Once the commit lands, the files only the expired snapshots referenced (their manifest lists, the
manifests no remaining snapshot lists, and the data files no remaining snapshot holds live: an
overwritten feature table's earlier rows, a merged manifest's predecessors) are deleted, as Spark's
`expire_snapshots` does; otherwise every full feature rebuild would leave its predecessor's files in
the bucket for good. A deletion that fails is logged and left for an orphan-file cleanup.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import ManifestFile
from pyiceberg.table import Table
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.table.update.snapshot import ExpireSnapshots

log = logging.getLogger(__name__)

MAX_AGE = "history.expire.max-snapshot-age-ms"
MIN_TO_KEEP = "history.expire.min-snapshots-to-keep"
LEDGER = "mlops.expired-snapshots"  # table property: the file recording the table's expired snapshots

# Five days is Iceberg's own default age; ten snapshots keep the previous feature build's source (an
# incremental run reads what curated gained since) however often runs happen. Older metadata files
# go too, past the last ten: each one lists every snapshot of its time.
RETENTION = {
    MAX_AGE: str(5 * 24 * 3600 * 1000),
    MIN_TO_KEEP: "10",
    "write.metadata.previous-versions-max": "10",
    "write.metadata.delete-after-commit.enabled": "true",
}
# Expiring is a commit that rewrites the ledger: done once this many snapshots are due, not at each run.
EXPIRE_AT_ONCE = 10

_LEDGER_SCHEMA = pa.schema(
    [
        pa.field("snapshot_id", pa.int64(), nullable=False),
        pa.field("committed_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("properties", pa.string(), nullable=False),  # the snapshot summary's own keys, as JSON
    ]
)


@dataclass(frozen=True)
class ExpiredSnapshot:
    """What the ledger keeps of a snapshot once it is gone."""

    snapshot_id: int
    committed_at: datetime
    properties: dict[str, str]


def due_for_expiry(table: Table, now: datetime | None = None) -> list[int]:
    """Ids of the snapshots the table's retention lets go: older than its maximum age, not among the
    newest it keeps, and held by no tag or branch."""
    properties = table.properties
    max_age_ms = int(properties.get(MAX_AGE, RETENTION[MAX_AGE]))
    keep = max(1, int(properties.get(MIN_TO_KEEP, RETENTION[MIN_TO_KEEP])))
    cutoff_ms = (now or datetime.now(UTC)).timestamp() * 1000 - max_age_ms
    held = {
        ref.snapshot_id
        for ref in table.metadata.refs.values()
        if ref.snapshot_ref_type in (SnapshotRefType.TAG, SnapshotRefType.BRANCH)
    }
    by_age = sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    older = by_age[:-keep]
    return [s.snapshot_id for s in older if s.timestamp_ms < cutoff_ms and s.snapshot_id not in held]


def read_ledger(table: Table) -> list[ExpiredSnapshot]:
    """The table's expired snapshots, oldest first (none when nothing has expired)."""
    path = table.properties.get(LEDGER)
    if not path:
        return []
    with table.io.new_input(path).open() as stream:
        rows = pq.read_table(stream).to_pylist()
    return [
        ExpiredSnapshot(row["snapshot_id"], row["committed_at"], json.loads(row["properties"]))
        for row in rows
    ]


def expire(table: Table, snapshot_ids: list[int]) -> bool:
    """Expire `snapshot_ids` and record them in the ledger, in one commit; False when another writer
    committed first (the next write tries again: nothing is lost by waiting)."""
    gone = {s.snapshot_id: s for s in table.snapshots() if s.snapshot_id in set(snapshot_ids)}
    if not gone:
        return False
    ledger = read_ledger(table) + [
        ExpiredSnapshot(
            snap.snapshot_id,
            datetime.fromtimestamp(snap.timestamp_ms / 1000, tz=UTC),
            dict(snap.summary.additional_properties if snap.summary else {}),
        )
        for snap in sorted(gone.values(), key=lambda s: s.timestamp_ms)
    ]
    previous = table.properties.get(LEDGER)
    # Beside the table's location, not in it: orphan-file cleanups (Athena's VACUUM, Spark's
    # remove_orphan_files) delete what the table's metadata does not reference, and a property is no
    # reference to them.
    path = f"{table.location().rstrip('/')}.ledger/expired-snapshots-{uuid.uuid4().hex}.parquet"
    rows = pa.Table.from_pylist(
        [
            {
                "snapshot_id": entry.snapshot_id,
                "committed_at": entry.committed_at,
                "properties": json.dumps(entry.properties, sort_keys=True),
            }
            for entry in ledger
        ],
        schema=_LEDGER_SCHEMA,
    )
    with table.io.new_output(path).create() as stream:
        pq.write_table(rows, stream)
    try:
        lists, manifests = _manifests_of(table, gone.values())
    except OSError as exc:  # a file already gone: expire all the same, and delete nothing
        log.warning("files of expiring snapshots of %s left in place: %s", table.name(), exc)
        lists, manifests = set(), {}
    try:
        with table.transaction() as transaction:
            ExpireSnapshots(transaction).by_ids(list(gone)).commit()
            transaction.set_properties({LEDGER: path})
    except CommitFailedException as exc:
        log.warning("expiring %d snapshots of %s deferred: %s", len(gone), table.name(), exc)
        table.io.delete(path)
        return False
    if previous:
        table.io.delete(previous)  # superseded: the new ledger holds every entry it had
    deleted = delete_unreachable(table, lists, manifests)
    log.info(
        "expired %d snapshots of %s; deleted %d files no remaining snapshot references",
        len(gone),
        table.name(),
        deleted,
    )
    return True


def _manifests_of(table: Table, snapshots: Iterable[Snapshot]) -> tuple[set[str], dict[str, ManifestFile]]:
    """The manifest lists of `snapshots`, and the manifests they list by path (each once)."""
    lists: set[str] = set()
    manifests: dict[str, ManifestFile] = {}
    for snap in snapshots:
        lists.add(snap.manifest_list)
        for manifest in snap.manifests(table.io):
            manifests.setdefault(manifest.manifest_path, manifest)
    return lists, manifests


def delete_unreachable(
    table: Table, expired_lists: set[str], expired_manifests: dict[str, ManifestFile]
) -> int:
    """Delete the files of expired snapshots that no snapshot the table still has references; returns
    how many went. Called after the expiry committed, on the table's metadata as it left it."""
    try:
        remaining_lists, remaining_manifests = _manifests_of(table, table.snapshots())
        live = {
            entry.data_file.file_path
            for manifest in remaining_manifests.values()
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
        }
        candidates = [m for path, m in expired_manifests.items() if path not in remaining_manifests]
        data = {
            entry.data_file.file_path
            for manifest in candidates
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False)
        }
    except OSError as exc:  # a manifest that cannot be read: delete nothing rather than guess
        log.warning("files of expired snapshots of %s left in place: %s", table.name(), exc)
        return 0
    doomed = [
        *sorted(data - live),
        *sorted(m.manifest_path for m in candidates),
        *sorted(expired_lists - remaining_lists),
    ]
    deleted = 0
    for path in doomed:
        try:
            table.io.delete(path)
            deleted += 1
        except OSError as exc:  # already gone, or not ours to delete: an orphan cleanup can finish
            log.warning("could not delete %s: %s", path, exc)
    return deleted
