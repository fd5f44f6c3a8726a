"""The three identities of the incident domain: alert fingerprint, group key, and the ids.

Fingerprint: "v1:" + sha256 over the "|"-joined, sorted canonical fields (source, alert_type,
service, model and the chosen labels), or over (source, dedup_key) when the caller brings its own
key. Group key: "g1:" + sha256 over source, alert_type and the group_by label values. They stay
separate from each other and from the incident id.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable

from sentinel.incident_manager.domain.model import AlertSource, Labels

FINGERPRINT_VERSION = "v1"
GROUP_KEY_VERSION = "g1"


def _canon(text: str) -> str:
    # NFC so that visually identical labels from different clients hash the same; escape the
    # separators so that no two field lists join to the same string.
    normal = unicodedata.normalize("NFC", text.strip())
    return normal.replace("\\", "\\\\").replace("|", "\\|").replace("=", "\\=")


def _digest(fields: Iterable[str]) -> str:
    return hashlib.sha256("|".join(sorted(fields)).encode("utf-8")).hexdigest()


def fingerprint(
    *,
    source: AlertSource,
    alert_type: str,
    service: str,
    model: str,
    labels: Labels,
    dedup_key: str = "",
    fingerprint_labels: Iterable[str] | None = None,
) -> str:
    """The versioned fingerprint of an alert; independent of label order.

    Args:
        source: Where the alert came from.
        alert_type: e.g. "latency_spike".
        service: Service concerned, or "".
        model: Model concerned, or "".
        labels: The alert's identifying labels.
        dedup_key: The caller's own key; when set it alone (with the source) identifies the alert.
        fingerprint_labels: Label names that enter the fingerprint; None means all labels.
    """
    src = f"source={_canon(source.fingerprint_name)}"
    if dedup_key:
        return f"{FINGERPRINT_VERSION}:{_digest([src, f'dedup_key={_canon(dedup_key)}'])}"
    chosen = (
        labels if fingerprint_labels is None else {k: labels[k] for k in fingerprint_labels if k in labels}
    )
    fields = [
        src,
        f"alert_type={_canon(alert_type)}",
        f"service={_canon(service)}",
        f"model={_canon(model)}",
        *(f"label:{_canon(k)}={_canon(v)}" for k, v in chosen.items()),
    ]
    return f"{FINGERPRINT_VERSION}:{_digest(fields)}"


def group_key(
    *, source: AlertSource, alert_type: str, matcher_labels: Labels, group_by: Iterable[str]
) -> str:
    """The group key: alerts sharing it join one open incident.

    Args:
        source: Where the alert came from.
        alert_type: e.g. "latency_spike".
        matcher_labels: `Alert.matcher_labels()`: labels plus service, model, alert_type, ...
        group_by: Label names whose values form the key (a missing label counts as "").
    """
    fields = [
        f"source={_canon(source.fingerprint_name)}",
        f"alert_type={_canon(alert_type)}",
        *(f"by:{_canon(name)}={_canon(matcher_labels.get(name, ''))}" for name in set(group_by)),
    ]
    return f"{GROUP_KEY_VERSION}:{_digest(fields)[:40]}"


def alert_id_for(fingerprint_value: str) -> str:
    """The stored alert's id: stable per fingerprint, so every replica names the same row."""
    return "alt_" + hashlib.sha256(fingerprint_value.encode("utf-8")).hexdigest()[:32]


def stable_id(prefix: str, *parts: str) -> str:
    """A deterministic id from its parts (idempotency keys of timeline entries, silences)."""
    return prefix + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
