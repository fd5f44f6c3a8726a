from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sentinel.runtime.clock import ManualClock, SystemClock


def test_system_clock_is_timezone_aware_utc() -> None:
    assert SystemClock().now().tzinfo is UTC


def test_manual_clock_moves_only_when_advanced() -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    before = clock.now()

    clock.advance(timedelta(minutes=5))
    clock.advance(1.5)

    assert clock.now() - before == timedelta(minutes=5, seconds=1.5)
    assert clock.monotonic() == pytest.approx(301.5)


def test_manual_clock_refuses_to_go_backwards_or_be_naive() -> None:
    with pytest.raises(ValueError, match="backwards"):
        ManualClock().advance(-1)
    with pytest.raises(ValueError, match="timezone"):
        ManualClock(datetime(2026, 1, 1))
