"""Series identity and batch validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel.runtime.errors import InvalidArgumentError
from sentinel.storage.domain.batch import SampleBatch, derive_batch_id, validate_batch
from sentinel.storage.domain.series import SeriesKey, series_hash, validate_series_key

labels = st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=10), max_size=6)


@given(labels, st.randoms())
def test_identity_ignores_label_order(mapping: dict[str, str], random: object) -> None:
    items = list(mapping.items())
    random.shuffle(items)  # type: ignore[attr-defined]
    assert series_hash("t", SeriesKey.of("m", mapping)) == series_hash("t", SeriesKey.of("m", dict(items)))


@given(st.text(max_size=5), st.text(max_size=5), labels, labels)
def test_different_series_have_different_hashes(
    name_a: str, name_b: str, a: dict[str, str], b: dict[str, str]
) -> None:
    key_a, key_b = SeriesKey.of(name_a, a), SeriesKey.of(name_b, b)
    assert (series_hash("t", key_a) == series_hash("t", key_b)) == (key_a == key_b)


def test_identity_is_per_tenant_and_unambiguous() -> None:
    key = SeriesKey.of("m", {"a": "b"})
    assert series_hash("t1", key) != series_hash("t2", key)
    # Separators inside values cannot forge another key.
    assert series_hash("t", SeriesKey.of("m", {"a": "b,c"})) != series_hash(
        "t", SeriesKey.of("m", {"a": "b", "c": ""})
    )
    assert len(series_hash("t", key)) == 32


@pytest.mark.parametrize(
    ("key", "field"),
    [
        (SeriesKey.of(""), "s.name"),
        (SeriesKey.of("x" * 201), "s.name"),
        (SeriesKey.of("has space"), "s.name"),
        (SeriesKey.of("m", {f"k{i}": "" for i in range(33)}), "s.labels"),
        (SeriesKey.of("m", {"": "v"}), "s.labels"),
        (SeriesKey.of("m", {"__name__": "v"}), "s.labels"),
        (SeriesKey.of("m", {"k": "v" * 501}), "s.labels[k]"),
    ],
)
def test_bad_series_keys_name_the_field(key: SeriesKey, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        validate_series_key(key, "s")
    assert raised.value.field == field


def test_series_key_limits_are_inclusive() -> None:
    validate_series_key(SeriesKey.of("a.b:c-d_E9" + "x" * 189, {f"k{i}": "v" * 500 for i in range(32)}), "s")


def make_batch(n: int = 4, **columns: object) -> SampleBatch:
    values: dict[str, object] = {
        "batch_id": "b",
        "series": (SeriesKey.of("m"), SeriesKey.of("n")),
        "series_index": np.array([i % 2 for i in range(n)], dtype=np.uint32),
        "time_unix_nano": np.arange(n, dtype=np.int64) * 1_000,
        "value": np.arange(n, dtype=np.float64),
    }
    values.update(columns)
    return SampleBatch(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (make_batch(value=np.array([1.0, np.nan, np.inf, 0])), "batch.value[1]: must be finite"),
        (
            make_batch(series_index=np.array([0, 1, 2, 0], dtype=np.uint32)),
            "batch.series_index[2]: out of range",
        ),
        (make_batch(time_unix_nano=np.arange(3, dtype=np.int64)), "batch.time_unix_nano: has 3 points"),
        (make_batch(series=(SeriesKey.of("m"), SeriesKey.of(""))), "batch.series[1].name: must not be empty"),
        (make_batch(series=()), "batch.series: must not be empty"),
        (
            make_batch(time_unix_nano=np.array([0, -5, 0, 0], dtype=np.int64)),
            "batch.time_unix_nano[1]: must not",
        ),
        (make_batch(367, time_unix_nano=np.arange(367, dtype=np.int64) * 86_400 * 10**9), "spans 367 days"),
    ],
)
def test_bad_batches_name_the_first_offending_field(batch: SampleBatch, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        validate_batch(batch)
    assert raised.value.message.startswith(message) or message in raised.value.message


@given(st.integers(0, 500), st.integers(1, 5))
def test_well_formed_batches_pass(n: int, n_series: int) -> None:
    rng = np.random.default_rng(n)
    validate_batch(
        SampleBatch(
            "b",
            tuple(SeriesKey.of(f"s{i}") for i in range(n_series)),
            rng.integers(0, n_series, n).astype(np.uint32),
            rng.integers(0, 2**62, n).astype(np.int64) // 10**6,
            rng.normal(size=n),
        )
    )


def test_derived_batch_ids_depend_on_every_column() -> None:
    base = make_batch()
    ids = {
        derive_batch_id(base),
        derive_batch_id(make_batch(value=np.array([0.0, 1, 2, 4]))),
        derive_batch_id(make_batch(time_unix_nano=np.array([0, 1, 2, 4], dtype=np.int64))),
        derive_batch_id(make_batch(series_index=np.array([0, 0, 0, 1], dtype=np.uint32))),
        derive_batch_id(make_batch(series=(SeriesKey.of("m"), SeriesKey.of("o")))),
    }
    assert len(ids) == 5
    assert derive_batch_id(base) == derive_batch_id(make_batch())
