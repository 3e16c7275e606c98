"""An iterator advanced on a background thread, a bounded number of items ahead of its consumer.

Streaming jobs chain stages that each wait on the other: a DuckDB join, ONNX scoring, Parquet
writes. Each stage spends its time in native code that releases the GIL, so running the producer
on a thread of its own lets one chunk be joined while the one before it is scored and written.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.1


class _Done:
    """The producer's last message: the iterator ended, or raised `error`."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class Prefetched(Generic[T]):
    """`items`, produced on a daemon thread at most `depth` items ahead. The producer's exception is
    raised in the consumer, where its item would have come. Closing this (`with prefetched(...)`)
    stops the producer and closes `items` on the producer's thread, so what it holds (a database
    session, open files) is released before the consumer goes on. A consumer that stops early
    must close it: the thread holds it, so dropping it does not."""

    def __init__(self, items: Iterator[T], depth: int = 1, name: str = "prefetch") -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._items = items
        self._queue: queue.Queue[T | _Done] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _offer(self, message: T | _Done) -> bool:
        """Queue `message` unless the consumer stopped first; whether it was queued."""
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._offer(item):
                    return
            self._offer(_Done())
        except BaseException as error:  # handed to the consumer, raised there
            self._offer(_Done(error))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        message = self._queue.get()
        if isinstance(message, _Done):
            self._finished = True
            self._thread.join()
            if message.error is not None:
                raise message.error
            raise StopIteration
        return message

    def close(self) -> None:
        """Stop the producer and wait until it has closed `items`."""
        self._finished = True
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Prefetched[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def prefetched(items: Iterator[T], depth: int = 1, name: str = "prefetch") -> Prefetched[T]:
    """`items` produced on a background thread, at most `depth` items ahead of the consumer."""
    return Prefetched(items, depth, name)
