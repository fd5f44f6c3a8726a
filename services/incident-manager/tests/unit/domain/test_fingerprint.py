from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from sentinel.incident_manager.domain.fingerprint import alert_id_for, fingerprint, group_key
from sentinel.incident_manager.domain.model import AlertSource

labels_st = st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=6)


def fp(**overrides: object) -> str:
    args: dict[str, object] = {
        "source": AlertSource.API,
        "alert_type": "latency_spike",
        "service": "chat-api",
        "model": "gpt-4o",
        "labels": {"env": "prod", "region": "eu"},
    }
    args.update(overrides)
    return fingerprint(**args)  # type: ignore[arg-type]


def test_fingerprint_is_versioned_sha256_over_sorted_pipe_joined_fields() -> None:
    expected = hashlib.sha256(
        "|".join(
            sorted(
                [
                    "source=api",
                    "alert_type=latency_spike",
                    "service=chat-api",
                    "model=gpt-4o",
                    "label:env=prod",
                    "label:region=eu",
                ]
            )
        ).encode()
    ).hexdigest()
    assert fp() == f"v1:{expected}"


def test_fingerprint_is_stable_across_calls() -> None:
    assert fp() == fp()
    assert fp().startswith("v1:") and len(fp()) == 3 + 64


@given(labels_st)
def test_fingerprint_does_not_depend_on_label_order(labels: dict[str, str]) -> None:
    reversed_labels = dict(reversed(list(labels.items())))
    assert fp(labels=labels) == fp(labels=reversed_labels)


def test_every_identifying_field_changes_the_fingerprint() -> None:
    base = fp()
    assert fp(source=AlertSource.ALERTMANAGER) != base
    assert fp(alert_type="error_rate_increase") != base
    assert fp(service="other") != base
    assert fp(model="other") != base
    assert fp(labels={"env": "staging", "region": "eu"}) != base


def test_separators_inside_values_cannot_forge_another_field_list() -> None:
    assert fp(labels={"a": "1|label:b=2"}) != fp(labels={"a": "1", "b": "2"})
    assert fp(service="x|model=y", model="") != fp(service="x", model="y")


def test_chosen_labels_limit_what_enters_the_fingerprint() -> None:
    chosen = ("env",)
    assert fp(labels={"env": "prod", "pod": "a"}, fingerprint_labels=chosen) == fp(
        labels={"env": "prod", "pod": "b"}, fingerprint_labels=chosen
    )
    assert fp(labels={"env": "prod", "pod": "a"}) != fp(labels={"env": "prod", "pod": "b"})


def test_a_callers_dedup_key_alone_identifies_the_alert_within_its_source() -> None:
    one = fp(dedup_key="pd-123", labels={"x": "1"}, service="a")
    two = fp(dedup_key="pd-123", labels={"y": "2"}, service="b")
    assert one == two
    assert fp(dedup_key="pd-123", source=AlertSource.PAGERDUTY) != one
    assert fp(dedup_key="pd-124") != one


def test_unicode_normalisation_makes_equivalent_labels_equal() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert fp(labels={"team": composed}) == fp(labels={"team": decomposed})


def test_group_key_uses_only_group_by_labels_plus_source_and_type() -> None:
    def key(labels: dict[str, str], group_by: tuple[str, ...] = ("service", "model", "alert_type")) -> str:
        return group_key(
            source=AlertSource.API, alert_type="latency_spike", matcher_labels=labels, group_by=group_by
        )

    assert key({"service": "a", "model": "m", "pod": "1"}) == key({"service": "a", "model": "m", "pod": "2"})
    assert key({"service": "a"}) != key({"service": "b"})
    assert key({"service": "a", "pod": "1"}, ("pod",)) != key({"service": "a", "pod": "2"}, ("pod",))
    assert key({"service": "a"}).startswith("g1:")


def test_fingerprint_group_key_and_alert_id_are_distinct_identities() -> None:
    value = fp()
    gk = group_key(
        source=AlertSource.API, alert_type="latency_spike", matcher_labels={}, group_by=("service",)
    )
    assert len({value, gk, alert_id_for(value)}) == 3
    assert alert_id_for(value) == alert_id_for(value)
