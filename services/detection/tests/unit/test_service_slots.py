"""The service's use of the slot table: which series a request may evict."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from sentinel.detection.adapters.reporting import NoAnomalySink
from sentinel.detection.adapters.state_store import MemoryOnlyStateStore
from sentinel.detection.domain.batch import ScoreRequest
from sentinel.detection.domain.series import SeriesKey, SeriesRef
from sentinel.detection.engine import EngineConfig
from sentinel.detection.service import DetectionService
from sentinel.runtime.clock import SystemClock


def _request(names: list[str], t: int) -> ScoreRequest:
    return ScoreRequest(
        batch_id="",
        series=tuple(SeriesKey.of(n) for n in names),
        series_index=np.arange(len(names), dtype=np.int64),
        time_unix_nano=np.full(len(names), t, dtype=np.int64),
        value=np.ones(len(names)),
    )


async def test_a_new_series_never_evicts_a_known_series_of_the_same_request() -> None:
    service = DetectionService(
        config=EngineConfig(capacity=2),
        store=MemoryOnlyStateStore(),
        sink=NoAnomalySink(),
        clock=SystemClock(),
    )
    await service.start()
    try:
        await service.score_samples(tenant="t", request=_request(["a"], 1))
        await service.score_samples(tenant="t", request=_request(["x"], 1))  # "a" is now the LRU
        slot_a = service._table.peek(SeriesRef("t", SeriesKey.of("a")))
        # "b" comes first in the table: it must take the slot of "x", not of "a" (in the request)
        await service.score_samples(tenant="t", request=_request(["b", "a"], 2))
        assert service._table.peek(SeriesRef("t", SeriesKey.of("a"))) is slot_a
        assert SeriesRef("t", SeriesKey.of("x")) not in service._table
        assert all(e.pins == 0 for e in service._table.entries())
    finally:
        await service.stop()


_WARM_CHECK = """
import asyncio
from sentinel.detection.adapters.reporting import NoAnomalySink
from sentinel.detection.adapters.state_store import MemoryOnlyStateStore
from sentinel.detection.engine import EngineConfig
from sentinel.detection.kernels import compiled
from sentinel.detection.service import DetectionService
from sentinel.runtime.clock import SystemClock

async def main():
    service = DetectionService(config=EngineConfig(capacity=4), store=MemoryOnlyStateStore(),
                               sink=NoAnomalySink(), clock=SystemClock())
    kernels = (compiled.reference_sorted_rows, compiled.recent_window_stats)
    before = min(len(f.signatures) for f in kernels)
    await service.start()
    after = min(len(f.signatures) for f in kernels)
    await service.stop()
    print(before, after)

asyncio.run(main())
"""


def test_start_compiles_the_compiled_kernels_before_serving() -> None:
    # A fresh interpreter: in this one, earlier tests may have compiled them already.
    out = subprocess.run([sys.executable, "-c", _WARM_CHECK], capture_output=True, text=True, check=True)
    before, after = map(int, out.stdout.split())
    assert before == 0 and after >= 1
