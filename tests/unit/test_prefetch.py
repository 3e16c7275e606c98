"""An iterator advanced on a background thread: same items, errors where they belong, closed cleanly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from pipelines.prefetch import prefetched


def test_the_items_come_in_order_and_all_of_them() -> None:
    assert list(prefetched(iter(range(1_000)), depth=3)) == list(range(1_000))
    assert list(prefetched(iter([]))) == []


def test_the_producer_runs_on_another_thread_at_most_depth_items_ahead() -> None:
    produced: list[int] = []
    threads: set[str] = set()

    def source() -> Iterator[int]:
        for item in range(20):
            threads.add(threading.current_thread().name)
            produced.append(item)
            yield item

    items = prefetched(source(), depth=2, name="joiner")
    assert next(items) == 0
    time.sleep(0.3)  # ample time to run ahead, if nothing held it back
    # One item taken, `depth` queued, one produced and waiting for room.
    assert len(produced) == 1 + 2 + 1
    assert list(items) == list(range(1, 20))
    assert threads == {"joiner"}


def test_an_error_in_the_producer_is_raised_where_its_item_would_have_come() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("duplicate feature rows")

    items = prefetched(source())
    assert next(items) == 1 and next(items) == 2
    with pytest.raises(ValueError, match="duplicate feature rows"):
        next(items)
    with pytest.raises(StopIteration):
        next(items)


def test_closing_early_stops_the_producer_and_closes_its_source_on_its_thread() -> None:
    closed_on: list[str] = []

    def source() -> Iterator[int]:
        try:
            yield from range(1_000_000)
        finally:
            closed_on.append(threading.current_thread().name)

    with prefetched(source(), depth=1, name="producer") as items:
        assert next(items) == 0
    assert closed_on == ["producer"]
    with pytest.raises(StopIteration):
        next(items)


def test_depth_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="depth must be at least 1, got 0"):
        prefetched(iter([1]), depth=0)
