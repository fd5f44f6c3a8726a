"""The micro-batcher: coalescing, arrival order, deadline, overload, worker thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sentinel.detection.batcher import MicroBatcher, QueueFullError


class Recorder:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.flushes: list[list[str]] = []
        self.threads: set[str] = set()
        self.delay_s = delay_s

    def run(self, payloads: Sequence[str]) -> list[str]:
        self.threads.add(threading.current_thread().name)
        self.flushes.append(list(payloads))
        if self.delay_s:
            threading.Event().wait(self.delay_s)
        return [p.upper() for p in payloads]


def batcher(recorder: Recorder, **kw: float) -> MicroBatcher[str, str, str]:
    options = {"max_points": 100, "max_delay_s": 0.02, "max_queue_points": 1000, **kw}
    return MicroBatcher(
        recorder.run,
        lambda payload, result: f"{payload}->{result}",
        max_points=int(options["max_points"]),
        max_delay_s=options["max_delay_s"],
        max_queue_points=int(options["max_queue_points"]),
    )


async def test_concurrent_jobs_are_coalesced_into_one_flush_in_arrival_order() -> None:
    recorder = Recorder()
    b = batcher(recorder)
    b.start()
    futures = [b.submit(f"job{i}", 5) for i in range(10)]
    results = await asyncio.gather(*futures)
    await b.close()
    assert results == [f"job{i}->JOB{i}" for i in range(10)]
    assert recorder.flushes == [[f"job{i}" for i in range(10)]]


async def test_a_full_size_flushes_without_waiting_for_the_deadline() -> None:
    recorder = Recorder()
    b = batcher(recorder, max_points=10, max_delay_s=30.0)
    b.start()
    results = await asyncio.wait_for(asyncio.gather(*(b.submit(f"j{i}", 5) for i in range(4))), 5)
    await b.close()
    assert len(results) == 4
    assert recorder.flushes == [["j0", "j1"], ["j2", "j3"]]


async def test_a_lone_job_is_flushed_at_the_deadline() -> None:
    recorder = Recorder()
    b = batcher(recorder, max_delay_s=0.05)
    b.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await b.submit("only", 1) == "only->ONLY"
    waited = loop.time() - started
    await b.close()
    assert 0.04 <= waited < 2


async def test_jobs_arriving_during_a_flush_follow_it_in_order() -> None:
    recorder = Recorder(delay_s=0.05)
    b = batcher(recorder, max_delay_s=0.0)
    b.start()
    first = b.submit("a", 1)
    await asyncio.sleep(0.01)  # "a" is being scored
    later = [b.submit(x, 1) for x in ("b", "c")]
    await asyncio.gather(first, *later)
    await b.close()
    assert recorder.flushes == [["a"], ["b", "c"]]


async def test_the_kernel_runs_on_one_worker_thread_off_the_event_loop() -> None:
    recorder = Recorder()
    b = batcher(recorder, max_points=1)
    b.start()
    await asyncio.gather(*(b.submit(f"j{i}", 1) for i in range(5)))
    await b.close()
    assert len(recorder.threads) == 1
    assert threading.main_thread().name not in recorder.threads


async def test_overload_is_refused_at_once_and_the_queue_recovers() -> None:
    recorder = Recorder(delay_s=0.05)
    b = batcher(recorder, max_queue_points=10, max_delay_s=0.0)
    b.start()
    accepted = b.submit("big", 8)
    with pytest.raises(QueueFullError) as caught:
        b.submit("too-much", 5)
    assert caught.value.reason == "QUEUE_FULL"
    await accepted
    assert b.queued_points == 0
    assert await b.submit("after", 5) == "after->AFTER"
    await b.close()


async def test_a_failed_flush_fails_its_jobs_and_calls_abandon() -> None:
    abandoned: list[str] = []

    def boom(payloads: Sequence[str]) -> list[str]:
        raise RuntimeError("kernel failed")

    b: MicroBatcher[str, str, str] = MicroBatcher(
        boom, lambda p, r: r, abandon=abandoned.append, max_points=10, max_delay_s=0, max_queue_points=10
    )
    b.start()
    with pytest.raises(RuntimeError):
        await b.submit("x", 1)
    await b.close()
    assert abandoned == ["x"]
    assert b.queued_points == 0


async def test_stop_scores_what_was_accepted_then_refuses() -> None:
    recorder = Recorder()
    b = batcher(recorder, max_delay_s=10.0)
    b.start()
    pending = b.submit("late", 1)
    await b.stop()
    assert pending.result() == "late->LATE"
    with pytest.raises(Exception, match="shutting down"):
        b.submit("refused", 1)
    await b.close()


async def test_the_next_flush_is_handed_to_the_worker_before_the_previous_one_is_finished() -> None:
    recorder = Recorder(delay_s=0.05)
    handed: list[int] = []

    class CountingExecutor(ThreadPoolExecutor):
        submitted = 0

        def submit(self, *args: Any, **kwargs: Any) -> Any:
            CountingExecutor.submitted += 1
            return super().submit(*args, **kwargs)

    def finish(payload: str, result: str) -> str:
        handed.append(CountingExecutor.submitted)
        return result

    executor = CountingExecutor(max_workers=1)
    b: MicroBatcher[str, str, str] = MicroBatcher(
        recorder.run, finish, max_points=100, max_delay_s=0.0, max_queue_points=100, executor=executor
    )
    b.start()
    first = b.submit("a", 1)
    await asyncio.sleep(0.01)  # "a" is being scored
    second = b.submit("b", 1)
    assert await asyncio.gather(first, second) == ["A", "B"]
    await b.close()
    executor.shutdown()
    # when "a" was finished, the flush of "b" was already with the worker
    assert handed == [2, 2]
    assert recorder.flushes == [["a"], ["b"]]
