"""The Helm charts the program installs, pinned in one dated record (`infra/facts/helm_charts.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import yaml

CHART_RECORD = Path(__file__).parent / "facts" / "helm_charts.yaml"


@dataclass(frozen=True)
class ChartPin:
    name: str
    repository: str
    version: str
    source: str
    values_schema_paths: tuple[str, ...]


@cache
def chart_pins() -> dict[str, ChartPin]:
    """Every pinned chart by name, as recorded (version, repository, where the version was read)."""
    document = yaml.safe_load(CHART_RECORD.read_text())
    return {
        name: ChartPin(
            name=name,
            repository=entry["repository"],
            version=str(entry["version"]),
            source=entry["source"],
            values_schema_paths=tuple(entry.get("values_schema_paths", ())),
        )
        for name, entry in document["charts"].items()
    }


def prefect_image_tag() -> str:
    """The Prefect image the server and worker run: the same Prefect as the flows' client (the lock's)."""
    return f"{metadata.version('prefect')}-python3.11"
