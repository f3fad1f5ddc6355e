"""A bounded work queue: at most `workers` images processed at once, `queue` more waiting.

A request takes a slot when it starts (before fetching, so downloads are bounded too) and the
slot is given back only when its engine job has really finished. A job that outlives its
`timeout=` cannot be killed (a thread), so its slot stays taken until it ends; otherwise
timed-out jobs would pile up in the executor without bound while new requests are admitted.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from . import memory

T = TypeVar("T")


class QueueFull(Exception):
    """No slot is free: answer 503 with Retry-After."""


class WorkQueue:
    def __init__(self, workers: int, queue: int):
        self.workers = workers
        self.capacity = workers + queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="imgpipe-serve")
        self._lock = threading.Lock()  # slots are released from worker threads too
        self._taken = 0

    @property
    def taken(self) -> int:
        return self._taken

    def slot(self) -> Slot:
        with self._lock:
            if self._taken >= self.capacity:
                raise QueueFull
            self._taken += 1
        return Slot(self)

    def _release(self) -> None:
        with self._lock:
            self._taken -= 1
            idle = self._taken == 0
        if idle:
            # The burst is over: hand freed image buffers back to the OS (memory.py).
            memory.trim()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class Slot:
    """One admitted request. Use as `with queue.slot() as slot:` and `await slot.run(...)`."""

    def __init__(self, queue: WorkQueue):
        self._queue = queue
        self._job: Future | None = None

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        job = self._job
        if job is not None and not job.done():
            job.add_done_callback(lambda _f: self._queue._release())
        else:
            self._queue._release()

    async def run(self, fn: Callable[..., T], *args: object, timeout: float) -> T:
        """Run fn in the pool; TimeoutError after `timeout` seconds (queued time included).

        A job that has not started when time runs out is cancelled and never uses the CPU.
        """
        if self._job is not None:
            raise RuntimeError("one job per slot")
        self._job = self._queue._executor.submit(fn, *args)
        return await asyncio.wait_for(asyncio.wrap_future(self._job), timeout)
