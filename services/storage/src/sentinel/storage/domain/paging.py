"""Opaque page tokens: urlsafe base64 of a small JSON cursor, bound to the query it came from."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from sentinel.runtime.errors import InvalidArgumentError

_VERSION = 1


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts.

    Attributes:
        series_id: first series of the next page.
        time_unix_micro: for a series cut short by a full page, the time its points resume at;
            None to start the series from the beginning of the range.
        skip: points at exactly (series_id, time_unix_micro) already returned.
        query: fingerprint of the query; a token is only valid for the query that made it.
    """

    series_id: int
    time_unix_micro: int | None = None
    skip: int = 0
    query: str = ""


def encode_token(cursor: Cursor) -> str:
    """The opaque token a client sends back as page_token."""
    raw = json.dumps(
        [_VERSION, cursor.query, cursor.series_id, cursor.time_unix_micro, cursor.skip],
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, *, query: str, field: str = "page_token") -> Cursor | None:
    """The cursor of a page token; None for the empty token (first page).

    Raises:
        InvalidArgumentError: malformed, or made by a different query.
    """
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        version, fingerprint, series_id, time_micro, skip = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidArgumentError(field, "is not a token this service issued") from None
    valid = (
        version == _VERSION
        and isinstance(series_id, int)
        and series_id > 0
        and (time_micro is None or isinstance(time_micro, int))
        and isinstance(skip, int)
        and skip >= 0
    )
    if not valid:
        raise InvalidArgumentError(field, "is not a token this service issued")
    if fingerprint != query:
        raise InvalidArgumentError(field, "belongs to a different query; send the same parameters")
    return Cursor(series_id, time_micro, skip, query)
