"""What a sweep runs: its segments, its trial settings and the chunks they are cut into.

A chunk is one segment's run of consecutive trials: the unit of work (one fan-out child, one
process) and of retry (its results file is written once, at its end; a rerun skips it).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlops.contract import Artifacts


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SegmentData(_Frozen):
    name: str | None  # the segment column's value (None: the rows where it is missing)
    train_key: str
    valid_key: str
    train_rows: int


class Chunk(_Frozen):
    segment: int  # index into SweepPlan.segments
    first_trial: int
    trials: int


class SweepPlan(_Frozen):
    sweep_key: str
    model_name: str
    task: str
    label: str
    segment_column: str
    numeric_features: list[str]
    categorical_features: dict[str, list[str] | None]  # None: an open category, learned
    artifacts: Artifacts
    prefix: str  # where the sweep's files live in the artifact store
    trials: list[dict[str, Any]] = Field(min_length=1)
    segments: list[SegmentData]
    fallback: list[str | None] = Field(default_factory=list)  # too small: served by the global model
    chunks: list[Chunk]
    base: dict[str, Any]  # batch_size, patience, seed, learning_rate, weight_decay, max_epochs
    architecture: dict[str, Any]  # embedding_dim, dropout (width and depth come from the trial)
    stacked: bool = True  # trials of one shape train side by side (models.sweep)

    @property
    def total_trials(self) -> int:
        return sum(chunk.trials for chunk in self.chunks)

    def result_key(self, chunk: int) -> str:
        return f"{self.prefix}/chunks/{chunk:05d}.json"

    def best_key(self, chunk: int) -> str:
        """The weights of the chunk's best trial (written before its results)."""
        return f"{self.prefix}/chunks/{chunk:05d}.best.pt"


def cut_chunks(segments: int, trials: int, chunk_trials: int) -> list[Chunk]:
    """Each segment's trials in runs of at most `chunk_trials`, segment by segment."""
    return [
        Chunk(segment=segment, first_trial=start, trials=min(chunk_trials, trials - start))
        for segment in range(segments)
        for start in range(0, trials, chunk_trials)
    ]
