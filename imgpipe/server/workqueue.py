"""A bounded work queue: at most `workers` images processed at once, `queue` more waiting.

A request takes a slot when it starts (before fetching, so downloads are bounded too) and gives
it back when it is answered. Its engine job needs one of `workers` tokens to start.

A job that outlives its `timeout=` cannot be killed (a thread), and its request is answered 504.
Two such jobs used to hold both workers of a 2-core server, so every later request waited its
whole timeout and got 504 too. Now a late job gives its token back, so others keep being
served, while its thread runs on in a reserve of `workers` extra threads. What stays bounded:
- late jobs: at most `workers` run outside the tokens; past that a late job keeps its token
  (no more threads than 2 x workers, ever);
- per client address: one with `max(1, workers // 2)` late jobs gets 503 for new requests
  until they end, so one client cannot use up the reserve or the workers.
The engine stops its own work at `timeout=` (engine/source.py); this is the server's backstop.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from . import memory

T = TypeVar("T")


class QueueFull(Exception):
    """No slot for this request: answer 503 with Retry-After. str() says why."""


class WorkQueue:
    """All state changes happen on the event loop; worker threads hand theirs over to it."""

    def __init__(self, workers: int, queue: int):
        self.workers = workers
        self.capacity = workers + queue
        self.max_late = workers
        self.late_per_client = max(1, workers // 2)
        self._executor = ThreadPoolExecutor(
            workers + self.max_late, thread_name_prefix="imgpipe-serve"
        )
        self._tokens = asyncio.Semaphore(workers)
        self._taken = 0
        self._late = 0  # jobs still running after their request was answered
        self._late_by_client: Counter[str] = Counter()  # those that gave their token back

    @property
    def taken(self) -> int:
        return self._taken

    @property
    def late(self) -> int:
        return self._late

    def slot(self, client: str) -> Slot:
        if self._taken >= self.capacity:
            raise QueueFull(f"all {self.capacity} work slots are taken")
        late = self._late_by_client[client]
        if late >= self.late_per_client:
            raise QueueFull(
                f"{late} earlier request(s) from {client} are still being "
                "processed after their timeout"
            )
        self._taken += 1
        return Slot(self, client)

    def _release(self) -> None:
        self._taken -= 1
        self._trim_if_idle()

    def _trim_if_idle(self) -> None:
        if self._taken == 0 and self._late == 0:
            # The burst is over: hand freed image buffers back to the OS (memory.py).
            memory.trim()

    def _running_late(self, job: Future, client: str) -> None:
        """`job` outlived its request: keep counting it until it really ends."""
        loop = asyncio.get_running_loop()
        self._late += 1
        spare_thread = sum(self._late_by_client.values()) < self.max_late
        if spare_thread:
            self._late_by_client[client] += 1
            self._tokens.release()  # its worker goes on in the reserve; others may start

        def ended() -> None:
            self._late -= 1
            if spare_thread:
                self._late_by_client[client] -= 1
                if not self._late_by_client[client]:
                    del self._late_by_client[client]
            else:
                self._tokens.release()
            self._trim_if_idle()

        def from_thread(_job: Future) -> None:
            try:
                loop.call_soon_threadsafe(ended)
            except RuntimeError:
                pass  # the loop is closed: the server has stopped

        job.add_done_callback(from_thread)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class Slot:
    """One admitted request. Use as `with queue.slot(client) as slot:` and `await slot.run()`."""

    def __init__(self, queue: WorkQueue, client: str):
        self._queue = queue
        self._client = client
        self._used = False

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue._release()

    async def run(self, fn: Callable[..., T], *args: object, timeout: float) -> T:
        """Run fn in the pool; TimeoutError after `timeout` seconds (waiting included).

        A job that has not started when time runs out never starts.
        """
        if self._used:
            raise RuntimeError("one job per slot")
        self._used = True
        queue = self._queue
        deadline = asyncio.get_running_loop().time() + timeout
        async with asyncio.timeout_at(deadline):
            await queue._tokens.acquire()
        job = queue._executor.submit(fn, *args)
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.wrap_future(job)
        finally:
            if job.done():
                queue._tokens.release()
            else:  # timed out, or the request was cancelled: the thread goes on
                queue._running_late(job, self._client)
