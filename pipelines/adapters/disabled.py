"""Stand-ins for capabilities an environment switches off by config (for example no online store in dev)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

log = logging.getLogger(__name__)


class OnlineStoreDisabled(Exception):
    """This environment has no online store (feature_store.online_enabled is false)."""


class DisabledOnlineStore:
    """OnlineStorePort that materializes nothing and refuses lookups with a clear message."""

    def __init__(self, environment: str) -> None:
        self.environment = environment

    def write(self, view: str, rows: pd.DataFrame, entity_key: str) -> int:
        log.info(
            "online store disabled in %s: %d %s rows not materialized", self.environment, len(rows), view
        )
        return 0

    def read(self, view: str, keys: Sequence[str], entity_key: str) -> pd.DataFrame:
        raise OnlineStoreDisabled(
            f"the {self.environment} environment has no online store (feature_store.online_enabled is false)"
        )
