"""Micro-batcher: concurrent scoring calls coalesced into one kernel call, run off the event loop.

Jobs are taken in arrival order and run by one worker thread, one flush after another, so the
points of one series submitted by different calls reach the kernel in the order the calls were
accepted. A flush starts when the pending points reach `max_points` or when the oldest pending job
has waited `max_delay_s`; while a flush is in the kernel, arriving jobs wait and form the next one,
which is handed to the worker as soon as the kernel returns, before the previous flush's jobs are
finished on the event loop (so the kernel never waits for that bookkeeping).

Points queued or in flight are bounded by `max_queue_points`; a job that
would exceed it is refused at once with RESOURCE_EXHAUSTED (reason QUEUE_FULL), so overload never
turns into unbounded latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from sentinel.runtime.errors import ResourceExhaustedError, UnavailableError

logger = logging.getLogger(__name__)

P = TypeVar("P")  # job payload
R = TypeVar("R")  # what the worker returns for a job
OutT = TypeVar("OutT")  # what the caller gets (after `finish` on the loop)
T = TypeVar("T")

QUEUE_POINTS = Gauge("sentinel_detection_queue_points", "Points queued or being scored by the micro-batcher")
FLUSH_POINTS = Histogram(
    "sentinel_detection_flush_points",
    "Points per kernel call",
    buckets=(1, 10, 100, 1_000, 5_000, 10_000, 50_000, 100_000, 500_000),
)
FLUSH_JOBS = Histogram(
    "sentinel_detection_flush_jobs",
    "Scoring calls coalesced per kernel call",
    buckets=(1, 2, 4, 8, 16, 64, 256),
)
KERNEL_SECONDS = Histogram(
    "sentinel_detection_kernel_seconds",
    "Time in the kernel per flush",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
REFUSED = Counter(
    "sentinel_detection_queue_refused_total", "Scoring calls refused because the queue was full"
)


class QueueFullError(ResourceExhaustedError):
    """The micro-batcher holds `max_queue_points` already."""

    default_reason = "QUEUE_FULL"


@dataclass
class _Job(Generic[P, OutT]):
    payload: P
    points: int
    future: asyncio.Future[OutT]


class MicroBatcher(Generic[P, R, OutT]):
    """Coalesces jobs into flushes run by `run` on one worker thread.

    Args:
        run: called on the worker thread with the payloads of one flush, in arrival order; returns
            one result per payload.
        finish: called on the event loop for each job right after its flush, in arrival order,
                before the caller resumes (bookkeeping that must not interleave with other flushes).
        abandon: called on the event loop for each job of a flush that failed (to release what
            the job holds); the caller gets the exception.
        max_points: flush as soon as this many points are pending (a flush takes whole jobs).
        max_delay_s: flush when the oldest pending job has waited this long.
        max_queue_points: bound on points queued or in flight.
    """

    def __init__(
        self,
        run: Callable[[Sequence[P]], Sequence[R]],
        finish: Callable[[P, R], OutT],
        *,
        abandon: Callable[[P], None] | None = None,
        max_points: int,
        max_delay_s: float,
        max_queue_points: int,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        if max_points < 1 or max_queue_points < 1 or max_delay_s < 0:
            raise ValueError("max_points and max_queue_points must be positive, max_delay_s >= 0")
        self._run = run
        self._finish = finish
        self._abandon = abandon
        self.max_points = max_points
        self.max_delay_s = max_delay_s
        self.max_queue_points = max_queue_points
        self._own_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="detection-kernel")
        self._pending: deque[_Job[P, OutT]] = deque()
        self._pending_points = 0
        self._queued_points = 0  # pending + in flight
        self._first_arrival = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.flushes = 0

    @property
    def queued_points(self) -> int:
        return self._queued_points

    def start(self) -> None:
        """Start the flush loop (in the running event loop)."""
        if self._task is None:
            self._closed = False
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="detection-batcher")

    def submit(self, payload: P, points: int) -> asyncio.Future[OutT]:
        """Queue a job now (synchronously, so acceptance order is arrival order).

        Raises:
            QueueFullError: the queue would exceed `max_queue_points` (a job alone in an empty
                queue is always accepted).
            UnavailableError: the batcher is stopping.
        """
        if self._closed or self._task is None:
            raise UnavailableError("the detection replica is shutting down; retry", reason="SHUTTING_DOWN")
        if self._queued_points and self._queued_points + points > self.max_queue_points:
            REFUSED.inc()
            raise QueueFullError(
                f"the scoring queue is full ({self._queued_points} points waiting); retry with backoff"
            )
        future: asyncio.Future[OutT] = asyncio.get_running_loop().create_future()
        if not self._pending:
            self._first_arrival = time.monotonic()
        self._pending.append(_Job(payload, points, future))
        self._pending_points += points
        self._queued_points += points
        QUEUE_POINTS.set(self._queued_points)
        self._wake.set()
        return future

    async def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the worker thread, after every flush already handed to it."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    async def stop(self) -> None:
        """Refuse new jobs, score every accepted one, stop the flush loop."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def close(self) -> None:
        """Stop (if running), then release the worker thread (after `call`s still to be made)."""
        await self.stop()
        if self._own_executor:
            await asyncio.to_thread(self.executor.shutdown, wait=True)

    async def _loop(self) -> None:
        # `previous`: the flush handed to the worker last and not finished yet. The next flush is
        # handed over as soon as the previous one's kernel returns and *before* its jobs are
        # finished on the loop, so the worker thread (the bottleneck under load) never waits for
        # the loop's bookkeeping; at most two flushes are in the executor at any time.
        previous: tuple[list[_Job[P, OutT]], asyncio.Future[Sequence[R]]] | None = None
        while True:
            if previous is not None:
                jobs, kernel = previous
                await asyncio.wait([kernel])
                following = self._submit() if self._pending else None
                self._complete(jobs, kernel)
                previous = following
                continue
            if not self._pending:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._pending_points < self.max_points and not self._closed:
                remaining = self._first_arrival + self.max_delay_s - time.monotonic()
                if remaining > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), remaining)
                    continue
            previous = self._submit()

    def _timed_run(self, payloads: Sequence[P]) -> Sequence[R]:
        started = time.perf_counter()
        try:
            return self._run(payloads)
        finally:
            KERNEL_SECONDS.observe(time.perf_counter() - started)

    def _submit(self) -> tuple[list[_Job[P, OutT]], asyncio.Future[Sequence[R]]]:
        """Take the next flush's jobs and hand them to the worker thread."""
        jobs: list[_Job[P, OutT]] = []
        points = 0
        while self._pending and (not jobs or points + self._pending[0].points <= self.max_points):
            job = self._pending.popleft()
            jobs.append(job)
            points += job.points
        self._pending_points -= points
        if self._pending:
            self._first_arrival = time.monotonic()
        FLUSH_POINTS.observe(points)
        FLUSH_JOBS.observe(len(jobs))
        payloads = [job.payload for job in jobs]
        kernel = asyncio.get_running_loop().run_in_executor(self.executor, self._timed_run, payloads)
        return jobs, kernel

    def _complete(self, jobs: list[_Job[P, OutT]], kernel: asyncio.Future[Sequence[R]]) -> None:
        """Finish (or fail) the jobs of a flush whose kernel has returned, in arrival order."""
        self._queued_points -= sum(job.points for job in jobs)
        QUEUE_POINTS.set(self._queued_points)
        self.flushes += 1
        exc = kernel.exception()
        if exc is not None:
            logger.error("scoring flush of %d jobs failed", len(jobs), exc_info=exc)
            for job in jobs:
                if self._abandon is not None:
                    self._abandon(job.payload)
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        for job, result in zip(jobs, kernel.result(), strict=True):
            try:
                outcome = self._finish(job.payload, result)
            except Exception as err:
                logger.exception("finishing a scoring job failed")
                if not job.future.done():
                    job.future.set_exception(err)
                continue
            if not job.future.done():
                job.future.set_result(outcome)
